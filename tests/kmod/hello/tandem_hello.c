// SPDX-License-Identifier: GPL-2.0
/* tandem_hello: the smallest module the kernel harness builds, loads and unloads. */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>

static int __init tandem_hello_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit tandem_hello_exit(void)
{
	pr_info("unloaded\n");
}

module_init(tandem_hello_init);
module_exit(tandem_hello_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("tandem");
MODULE_DESCRIPTION("Kernel harness smoke-test module for tandem");
