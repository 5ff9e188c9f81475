/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * tandem_blk.h - ABI of the tandem block shim (tandem.ko) and its user-space server.
 *
 * Devices:
 *   /dev/tandem-control  control: GET_FEATURES, ADD_DEV, DEL_DEV, GET_DEV_INFO (CAP_SYS_ADMIN)
 *   /dev/tandemN         the block device
 *   /dev/tandemcN        the server's char device: open() attaches the server (one at a time,
 *                        a second opener gets -EBUSY), mmap() maps one queue's region,
 *                        ioctls GET_DEV_INFO, SET_EVENTFD, COMMIT
 *
 * Parameter blocks carry their own `size` (the size of the struct the caller was built with).
 * The driver matches ioctl commands by type and number only, so a block may grow at its end:
 * the driver accepts any size >= the version 1 size, rejects unknown trailing bytes that are
 * not zero (-E2BIG), and writes back at most `size` bytes. Every reserved field must be zero
 * (-EINVAL otherwise) and is returned as zero.
 *
 * Per-queue region (mmap offset q * layout.queue_stride, length layout.region_size, MAP_SHARED;
 * user space must use the offsets GET_DEV_INFO reports, not assume the ones below):
 *   header_offset  struct tandem_blk_ring_header, each index on its own 64-byte line
 *   sq_offset      sq_entries x struct tandem_blk_sqe     (kernel -> server)
 *   cq_offset      cq_entries x struct tandem_blk_cqe     (server -> kernel)
 *   data_offset    queue_depth slots of data_slot_size bytes; slot = tag (page aligned)
 *
 * Rings: entries = queue_depth (a power of two); indexes are free-running __u32, the entry
 * of index i is i & (entries - 1). The kernel issues a new descriptor for a tag only after the
 * server completed that tag's previous one, so neither ring can overflow.
 *
 * Kernel -> server: the kernel writes the descriptor (and, for WRITE, the data into the tag's
 * slot), then publishes sq_prod (release), then a full barrier, then signals the queue's eventfd
 * only if the server set TANDEM_BLK_RING_NEED_WAKEUP in `flags`. An idle server sets the flag,
 * issues a full barrier, re-reads sq_prod and blocks on the eventfd only if nothing arrived.
 *
 * Server -> kernel: the server writes completions (READ data into the tag's slot first), then
 * publishes cq_prod (release), then calls TANDEM_BLK_IOC_COMMIT(queue) once per batch; the
 * kernel reaps every completion up to cq_prod, copies READ data into the request's pages,
 * ends the requests and publishes cq_cons.
 *
 * Timeouts: a request the server does not complete within timeout_ms fails with an error. Its
 * tag (and data slot) is not reissued until the server completes the stale descriptor (the
 * kernel then drops that completion) or one more timeout_ms passes (new requests on that tag
 * then fail at once) or the server detaches; a completion whose seq does not match the tag's
 * current descriptor is ignored.
 *
 * Server death: closing the char device (e.g. the process died) fails every in-flight request
 * with an I/O error; while no server is attached new requests fail at once. A new open()
 * attaches again with fresh rings. DEL_DEV refuses with -EBUSY while a server is attached or
 * the block device is open.
 */
#ifndef _UAPI_LINUX_TANDEM_BLK_H
#define _UAPI_LINUX_TANDEM_BLK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TANDEM_BLK_ABI_VERSION 1

/* Features, negotiated: ADD_DEV grants the wanted bits the driver supports. */
#define TANDEM_BLK_F_FLUSH (1ULL << 0)        /* volatile write cache: FLUSH requests */
#define TANDEM_BLK_F_FUA (1ULL << 1)          /* TANDEM_BLK_SQE_F_FUA on writes (needs FLUSH) */
#define TANDEM_BLK_F_DISCARD (1ULL << 2)      /* TANDEM_BLK_OP_DISCARD */
#define TANDEM_BLK_F_WRITE_ZEROES (1ULL << 3) /* TANDEM_BLK_OP_WRITE_ZEROES */
#define TANDEM_BLK_F_ALL \
	(TANDEM_BLK_F_FLUSH | TANDEM_BLK_F_FUA | TANDEM_BLK_F_DISCARD | TANDEM_BLK_F_WRITE_ZEROES)

/* Limits of this ABI version. */
#define TANDEM_BLK_MAX_DEVS 64
#define TANDEM_BLK_MAX_QUEUES 64
#define TANDEM_BLK_MAX_QUEUE_DEPTH 1024
#define TANDEM_BLK_MAX_IO_BYTES (1U << 20)
#define TANDEM_BLK_MAX_DATA_BYTES (256U << 20) /* queue_depth * max_io_bytes per queue */
#define TANDEM_BLK_MAX_DISCARD_BYTES (1U << 30)
#define TANDEM_BLK_MIN_TIMEOUT_MS 100
#define TANDEM_BLK_MAX_TIMEOUT_MS 3600000
#define TANDEM_BLK_DEFAULT_TIMEOUT_MS 30000
#define TANDEM_BLK_DEV_ID_ANY 0xffffffffU
#define TANDEM_BLK_CACHELINE 64

/* GET_FEATURES: what this driver supports. */
struct tandem_blk_features {
	__u32 size;		/* in: sizeof as the caller knows it; out: bytes written */
	__u32 version;		/* out: TANDEM_BLK_ABI_VERSION */
	__u64 features;		/* out: supported TANDEM_BLK_F_* */
	__u32 max_devs;		/* out: TANDEM_BLK_MAX_DEVS */
	__u32 max_queues;	/* out: at most TANDEM_BLK_MAX_QUEUES and the CPUs */
	__u32 max_queue_depth;	/* out: TANDEM_BLK_MAX_QUEUE_DEPTH */
	__u32 max_io_bytes;	/* out: TANDEM_BLK_MAX_IO_BYTES */
	__u64 reserved[4];
};

/* ADD_DEV (in/out) and embedded in struct tandem_blk_dev_info. */
struct tandem_blk_params {
	__u32 size;		/* in: sizeof as the caller knows it; out: bytes written */
	__u32 dev_id;		/* in: wanted id or TANDEM_BLK_DEV_ID_ANY; out: the id */
	__u64 dev_size;		/* bytes, a multiple of logical_bs */
	__u64 features;		/* in: wanted TANDEM_BLK_F_*; out: granted */
	__u32 logical_bs;	/* 512, 1024, 2048 or 4096 */
	__u32 physical_bs;	/* power of two, logical_bs..65536; 0: logical_bs */
	__u32 nr_queues;	/* 1..features.max_queues */
	__u32 queue_depth;	/* power of two, 1..TANDEM_BLK_MAX_QUEUE_DEPTH */
	__u32 max_io_bytes;	/* multiple of 4096, 4096..TANDEM_BLK_MAX_IO_BYTES */
	__u32 timeout_ms;	/* request timeout; 0: TANDEM_BLK_DEFAULT_TIMEOUT_MS */
	__u64 reserved[4];
};

/* DEL_DEV. */
struct tandem_blk_dev_cmd {
	__u32 size;
	__u32 dev_id;
	__u64 reserved[3];
};

/* Where one queue's rings and data live in its mmap region. */
struct tandem_blk_layout {
	__u64 queue_stride;	/* mmap offset of queue q is q * queue_stride */
	__u64 region_size;	/* bytes to map per queue */
	__u32 header_offset;
	__u32 header_size;
	__u32 sq_offset;
	__u32 sq_entries;	/* = queue_depth */
	__u32 cq_offset;
	__u32 cq_entries;	/* = queue_depth */
	__u64 data_offset;
	__u64 data_size;	/* queue_depth * data_slot_size */
	__u32 data_slot_size;	/* = max_io_bytes */
	__u32 reserved0;
	__u64 reserved[2];
};

#define TANDEM_BLK_STATE_ATTACHED (1U << 0)	/* a server has the char device open */
#define TANDEM_BLK_STATE_OPEN (1U << 1)		/* the block device is open */

/* GET_DEV_INFO: dev_id in (ignored on the char device), the rest out. */
struct tandem_blk_dev_info {
	__u32 size;
	__u32 dev_id;
	__u32 state;		/* TANDEM_BLK_STATE_* */
	__u32 reserved0;
	struct tandem_blk_params params;	/* version 1 block; params.size = its size */
	struct tandem_blk_layout layout;
	__u32 disk_major;	/* /dev/tandemN */
	__u32 disk_minor;
	__u32 cdev_major;	/* /dev/tandemcN */
	__u32 cdev_minor;
	__u64 reserved[2];
};

/* SET_EVENTFD (char device): the eventfd the kernel signals for a queue; fd -1 removes it. */
struct tandem_blk_eventfd {
	__u32 size;
	__u32 queue;
	__s32 fd;
	__u32 reserved0;
	__u64 reserved[2];
};

/* The ring header: every index on its own cache line. */
#define TANDEM_BLK_RING_NEED_WAKEUP (1U << 0)

struct tandem_blk_ring_header {
	__u32 sq_prod;		/* kernel: descriptors published */
	__u32 pad0[15];
	__u32 sq_cons;		/* server: descriptors taken (informational) */
	__u32 pad1[15];
	__u32 cq_prod;		/* server: completions published */
	__u32 pad2[15];
	__u32 cq_cons;		/* kernel: completions reaped */
	__u32 pad3[15];
	__u32 flags;		/* server: TANDEM_BLK_RING_NEED_WAKEUP */
	__u32 pad4[15];
	__u32 reserved[48];
};

/* Request operations. */
#define TANDEM_BLK_OP_READ 0
#define TANDEM_BLK_OP_WRITE 1
#define TANDEM_BLK_OP_FLUSH 2
#define TANDEM_BLK_OP_DISCARD 3
#define TANDEM_BLK_OP_WRITE_ZEROES 4

/* Descriptor flags. */
#define TANDEM_BLK_SQE_F_FUA (1U << 0)	/* WRITE: durable before completion */
#define TANDEM_BLK_SQE_F_ALL TANDEM_BLK_SQE_F_FUA

/* Submission descriptor (kernel -> server). FLUSH has offset and length 0. */
struct tandem_blk_sqe {
	__u16 tag;		/* < queue_depth; also the data slot */
	__u8 op;		/* TANDEM_BLK_OP_* */
	__u8 flags;		/* TANDEM_BLK_SQE_F_* */
	__u32 seq;		/* per-tag sequence, echoed in the completion */
	__u64 offset;		/* bytes, a multiple of logical_bs */
	__u32 length;		/* bytes, a multiple of logical_bs */
	__u32 reserved0;
	__u64 reserved1;
};

/* Completion (server -> kernel). */
struct tandem_blk_cqe {
	__u16 tag;
	__u16 reserved0;
	__u32 seq;		/* the descriptor's seq */
	__s32 result;		/* 0 or a negative errno */
	__u32 reserved1;
};

/*
 * ioctls. The size in each number is the version 1 struct's; the driver looks only at the type
 * and number and takes the real size from the struct's `size` field.
 */
#define TANDEM_BLK_IOC_MAGIC 0xd7
#define TANDEM_BLK_IOC_GET_FEATURES _IOWR(TANDEM_BLK_IOC_MAGIC, 0x00, struct tandem_blk_features)
#define TANDEM_BLK_IOC_ADD_DEV _IOWR(TANDEM_BLK_IOC_MAGIC, 0x01, struct tandem_blk_params)
#define TANDEM_BLK_IOC_DEL_DEV _IOW(TANDEM_BLK_IOC_MAGIC, 0x02, struct tandem_blk_dev_cmd)
#define TANDEM_BLK_IOC_GET_DEV_INFO _IOWR(TANDEM_BLK_IOC_MAGIC, 0x03, struct tandem_blk_dev_info)
#define TANDEM_BLK_IOC_SET_EVENTFD _IOW(TANDEM_BLK_IOC_MAGIC, 0x10, struct tandem_blk_eventfd)
/* COMMIT: the argument is the queue index (not a pointer); returns completions reaped. */
#define TANDEM_BLK_IOC_COMMIT _IO(TANDEM_BLK_IOC_MAGIC, 0x11)

/* Layout pins, checked wherever this header is compiled (the kernel, C11 and C++). */
#if defined(__cplusplus)
#define TANDEM_BLK_ASSERT(expr) static_assert(expr, #expr)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define TANDEM_BLK_ASSERT(expr) _Static_assert(expr, #expr)
#else
#define TANDEM_BLK_ASSERT(expr)
#endif
#define TANDEM_BLK_OFFSET(type, field) __builtin_offsetof(struct type, field)

TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_features) == 64);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_features, features) == 8);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_features, max_io_bytes) == 28);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_params) == 80);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_params, dev_size) == 8);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_params, features) == 16);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_params, logical_bs) == 24);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_params, queue_depth) == 36);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_params, timeout_ms) == 44);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_params, reserved) == 48);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_dev_cmd) == 32);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_layout) == 80);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_layout, header_offset) == 16);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_layout, cq_offset) == 32);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_layout, data_offset) == 40);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_layout, data_slot_size) == 56);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_dev_info) == 208);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_dev_info, params) == 16);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_dev_info, layout) == 96);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_dev_info, disk_major) == 176);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_eventfd) == 32);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_ring_header) == 512);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_ring_header, sq_cons) == 64);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_ring_header, cq_prod) == 128);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_ring_header, cq_cons) == 192);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_ring_header, flags) == 256);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_sqe) == 32);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_sqe, op) == 2);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_sqe, seq) == 4);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_sqe, offset) == 8);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_sqe, length) == 16);
TANDEM_BLK_ASSERT(sizeof(struct tandem_blk_cqe) == 16);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_cqe, seq) == 4);
TANDEM_BLK_ASSERT(TANDEM_BLK_OFFSET(tandem_blk_cqe, result) == 8);

#endif /* _UAPI_LINUX_TANDEM_BLK_H */
