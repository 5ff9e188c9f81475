// SPDX-License-Identifier: GPL-2.0
/*
 * tandem_blk.c - the tandem block shim: a blk-mq driver whose requests are served by a
 * user-space process (the tandem replicator) through per-queue rings in shared memory.
 *
 * The ABI (ioctls, ring layout, wake-up protocol, timeout and detach semantics) is described in
 * uapi/tandem_blk.h.
 *
 * Objects and lifetimes:
 *   struct tandem_dev    one device: a gendisk (/dev/tandemN) and a char device
 *                        (/dev/tandemcN). Reference counted through cdev_dev: the control
 *                        registry holds one reference, the gendisk one (dropped in
 *                        ->free_disk), and every open file of the char device one (through
 *                        the cdev's kobject). The last put frees the tag set and the queues.
 *   struct tandem_queue  one blk-mq hardware queue: its tags and, while a server is attached,
 *                        its rings (struct tandem_ring).
 *   struct tandem_ring   one queue's shared region (vmalloc_user), owned by the attach
 *                        session (the open char device file): allocated at open(), freed at
 *                        release(). A mapping holds a file reference, so the memory outlives
 *                        every user mapping.
 *
 * Lock order and rules:
 *   tandem_ctl_mutex     the device registry (idr); ADD_DEV, DEL_DEV, GET_DEV_INFO, module
 *                        exit.
 *   dev->mutex           dev->attached and dev->deleted; open() and release() of the char
 *                        device. Taken inside tandem_ctl_mutex.
 *   tq->lock             (spinlock, never taken from interrupt context) the queue's tag states,
 *                        ring pointer, private ring indexes and eventfd. Taken inside
 *                        dev->mutex.
 *   A request is ended (blk_mq_end_request) only by whoever moved its tag out of
 *   TANDEM_TAG_INFLIGHT under tq->lock, and never with tq->lock held: ending a request may
 *   submit new I/O, which would re-enter ->queue_rq.
 *   ->queue_rq copies WRITE data into the ring without tq->lock (the tag is TANDEM_TAG_RESERVED
 *   meanwhile); release() quiesces the queue before it frees the ring, which waits for it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/build_bug.h>
#include <linux/capability.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/jiffies.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "uapi/tandem_blk.h"

#define TANDEM_FEATURES TANDEM_BLK_F_ALL

enum tandem_tag_state {
	TANDEM_TAG_IDLE,	/* no request, or one being ended by its owner */
	TANDEM_TAG_RESERVED,	/* ->queue_rq is filling the slot */
	TANDEM_TAG_INFLIGHT,	/* descriptor published, waiting for the server */
	TANDEM_TAG_QUARANTINED,	/* timed out; the server may still use the slot */
};

struct tandem_tag {
	struct request *rq;		/* valid in TANDEM_TAG_INFLIGHT */
	unsigned long quarantine_end;	/* jiffies; valid in TANDEM_TAG_QUARANTINED */
	u32 seq;			/* the last descriptor's sequence */
	u8 state;			/* enum tandem_tag_state */
};

struct tandem_ring {
	void *mem;			/* vmalloc_user(layout.region_size) */
	struct tandem_blk_ring_header *hdr;
	struct tandem_blk_sqe *sq;
	struct tandem_blk_cqe *cq;
	u8 *data;
};

struct tandem_dev;

struct tandem_queue {
	spinlock_t lock;		/* see the lock rules above */
	struct tandem_dev *dev;
	unsigned int qid;
	struct tandem_ring *ring;	/* NULL while no server is attached */
	struct eventfd_ctx *evfd;	/* NULL: the server polls */
	u32 sq_prod;			/* the kernel's copy of ring->hdr->sq_prod */
	u32 cq_cons;			/* the kernel's copy of ring->hdr->cq_cons */
	struct tandem_tag *tags;	/* queue_depth entries */
} ____cacheline_aligned_in_smp;

struct tandem_dev {
	struct device cdev_dev;
	struct cdev cdev;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	struct tandem_blk_params params;	/* as granted */
	struct tandem_blk_layout layout;
	unsigned long timeout;			/* jiffies */
	int id;

	struct mutex mutex;			/* the four flags below */
	bool live;				/* add_disk() succeeded: servers may attach */
	bool attaching;				/* an open() reserved the device, allocating */
	bool attached;
	bool deleted;

	struct tandem_queue *queues;		/* params.nr_queues */
};

/* One attach: the open char device file's private data. */
struct tandem_session {
	struct tandem_dev *dev;
	struct tandem_ring rings[];		/* params.nr_queues */
};

static DEFINE_MUTEX(tandem_ctl_mutex);
static DEFINE_IDR(tandem_idr);
static dev_t tandem_chr_devt;
static struct class *tandem_class;

/* Pins the ABI from the kernel side, independently of the header's own assertions. */
static void __init tandem_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct tandem_blk_features) != 64);
	BUILD_BUG_ON(sizeof(struct tandem_blk_params) != 80);
	BUILD_BUG_ON(offsetof(struct tandem_blk_params, dev_size) != 8);
	BUILD_BUG_ON(offsetof(struct tandem_blk_params, features) != 16);
	BUILD_BUG_ON(offsetof(struct tandem_blk_params, logical_bs) != 24);
	BUILD_BUG_ON(offsetof(struct tandem_blk_params, nr_queues) != 32);
	BUILD_BUG_ON(offsetof(struct tandem_blk_params, max_io_bytes) != 40);
	BUILD_BUG_ON(offsetof(struct tandem_blk_params, reserved) != 48);
	BUILD_BUG_ON(sizeof(struct tandem_blk_dev_cmd) != 32);
	BUILD_BUG_ON(sizeof(struct tandem_blk_layout) != 80);
	BUILD_BUG_ON(offsetof(struct tandem_blk_layout, sq_offset) != 24);
	BUILD_BUG_ON(offsetof(struct tandem_blk_layout, data_offset) != 40);
	BUILD_BUG_ON(offsetof(struct tandem_blk_layout, data_slot_size) != 56);
	BUILD_BUG_ON(sizeof(struct tandem_blk_dev_info) != 208);
	BUILD_BUG_ON(offsetof(struct tandem_blk_dev_info, params) != 16);
	BUILD_BUG_ON(offsetof(struct tandem_blk_dev_info, layout) != 96);
	BUILD_BUG_ON(offsetof(struct tandem_blk_dev_info, cdev_major) != 184);
	BUILD_BUG_ON(sizeof(struct tandem_blk_eventfd) != 32);
	BUILD_BUG_ON(offsetof(struct tandem_blk_eventfd, fd) != 8);
	BUILD_BUG_ON(sizeof(struct tandem_blk_ring_header) != 512);
	BUILD_BUG_ON(offsetof(struct tandem_blk_ring_header, sq_cons) != 64);
	BUILD_BUG_ON(offsetof(struct tandem_blk_ring_header, cq_prod) != 128);
	BUILD_BUG_ON(offsetof(struct tandem_blk_ring_header, cq_cons) != 192);
	BUILD_BUG_ON(offsetof(struct tandem_blk_ring_header, flags) != 256);
	BUILD_BUG_ON(sizeof(struct tandem_blk_sqe) != 32);
	BUILD_BUG_ON(offsetof(struct tandem_blk_sqe, op) != 2);
	BUILD_BUG_ON(offsetof(struct tandem_blk_sqe, flags) != 3);
	BUILD_BUG_ON(offsetof(struct tandem_blk_sqe, seq) != 4);
	BUILD_BUG_ON(offsetof(struct tandem_blk_sqe, offset) != 8);
	BUILD_BUG_ON(offsetof(struct tandem_blk_sqe, length) != 16);
	BUILD_BUG_ON(offsetof(struct tandem_blk_sqe, reserved1) != 24);
	BUILD_BUG_ON(sizeof(struct tandem_blk_cqe) != 16);
	BUILD_BUG_ON(offsetof(struct tandem_blk_cqe, seq) != 4);
	BUILD_BUG_ON(offsetof(struct tandem_blk_cqe, result) != 8);
	BUILD_BUG_ON(offsetof(struct tandem_blk_cqe, reserved1) != 12);
	BUILD_BUG_ON(TANDEM_BLK_MAX_QUEUE_DEPTH > BLK_MQ_MAX_DEPTH);
	BUILD_BUG_ON(TANDEM_BLK_MAX_QUEUE_DEPTH - 1 > U16_MAX);
}

static bool tandem_reserved_zero(const u64 *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (r[i])
			return false;
	return true;
}

/*
 * Copies a parameter block that carries its own size from user space into @k (@ksize bytes,
 * version 1 size @minsize). Returns the caller's size or a negative errno.
 */
static int tandem_copy_in(void *k, size_t ksize, size_t minsize, void __user *uarg)
{
	u32 usize;
	int ret;

	if (get_user(usize, (u32 __user *)uarg))
		return -EFAULT;
	if (usize < minsize || usize > PAGE_SIZE)
		return -EINVAL;
	ret = copy_struct_from_user(k, ksize, uarg, usize);
	if (ret)
		return ret;
	return usize;
}

/* Writes @k back, at most @usize bytes, with the size field set to the bytes written. */
static int tandem_copy_out(void __user *uarg, void *k, size_t ksize, u32 usize)
{
	u32 n = min_t(u32, usize, ksize);

	*(u32 *)k = n;
	if (copy_to_user(uarg, k, n))
		return -EFAULT;
	return 0;
}

static unsigned int tandem_max_queues(void)
{
	return min_t(unsigned int, TANDEM_BLK_MAX_QUEUES, nr_cpu_ids);
}

/* Checks and completes ADD_DEV's parameters; fills the per-queue layout. */
static int tandem_check_params(struct tandem_blk_params *p, struct tandem_blk_layout *l)
{
	u64 sq_end, cq_end;

	if (!tandem_reserved_zero(p->reserved, ARRAY_SIZE(p->reserved)))
		return -EINVAL;
	if (p->logical_bs < 512 || p->logical_bs > 4096 || !is_power_of_2(p->logical_bs))
		return -EINVAL;
	if (!p->physical_bs)
		p->physical_bs = p->logical_bs;
	if (p->physical_bs < p->logical_bs || p->physical_bs > 65536 ||
	    !is_power_of_2(p->physical_bs))
		return -EINVAL;
	if (!p->dev_size || p->dev_size % p->logical_bs || p->dev_size > (U64_MAX >> 1))
		return -EINVAL;
	if (!p->nr_queues || p->nr_queues > tandem_max_queues())
		return -EINVAL;
	if (!p->queue_depth || p->queue_depth > TANDEM_BLK_MAX_QUEUE_DEPTH ||
	    !is_power_of_2(p->queue_depth))
		return -EINVAL;
	if (p->max_io_bytes < 4096 || p->max_io_bytes > TANDEM_BLK_MAX_IO_BYTES ||
	    p->max_io_bytes % 4096 || p->max_io_bytes % PAGE_SIZE)
		return -EINVAL;
	if ((u64)p->queue_depth * p->max_io_bytes > TANDEM_BLK_MAX_DATA_BYTES)
		return -EINVAL;
	if (!p->timeout_ms)
		p->timeout_ms = TANDEM_BLK_DEFAULT_TIMEOUT_MS;
	if (p->timeout_ms < TANDEM_BLK_MIN_TIMEOUT_MS || p->timeout_ms > TANDEM_BLK_MAX_TIMEOUT_MS)
		return -EINVAL;

	p->features &= TANDEM_FEATURES;
	if (!(p->features & TANDEM_BLK_F_FLUSH))
		p->features &= ~TANDEM_BLK_F_FUA;

	memset(l, 0, sizeof(*l));
	l->header_offset = 0;
	l->header_size = sizeof(struct tandem_blk_ring_header);
	l->sq_offset = ALIGN(l->header_size, TANDEM_BLK_CACHELINE);
	l->sq_entries = p->queue_depth;
	sq_end = l->sq_offset + (u64)l->sq_entries * sizeof(struct tandem_blk_sqe);
	l->cq_offset = ALIGN(sq_end, TANDEM_BLK_CACHELINE);
	l->cq_entries = p->queue_depth;
	cq_end = l->cq_offset + (u64)l->cq_entries * sizeof(struct tandem_blk_cqe);
	l->data_offset = PAGE_ALIGN(cq_end);
	l->data_slot_size = p->max_io_bytes;
	l->data_size = (u64)p->queue_depth * p->max_io_bytes;
	l->region_size = PAGE_ALIGN(l->data_offset + l->data_size);
	l->queue_stride = l->region_size;
	return 0;
}

/* ---- rings ---- */

static void tandem_copy_to_slot(struct request *rq, u8 *slot)
{
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		memcpy_from_bvec(slot, &bv);
		slot += bv.bv_len;
	}
}

static void tandem_copy_from_slot(struct request *rq, const u8 *slot)
{
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		memcpy_to_bvec(&bv, slot);
		slot += bv.bv_len;
	}
}

static u8 tandem_sqe_op(struct request *rq)
{
	switch (req_op(rq)) {
	case REQ_OP_READ:
		return TANDEM_BLK_OP_READ;
	case REQ_OP_WRITE:
		return TANDEM_BLK_OP_WRITE;
	case REQ_OP_FLUSH:
		return TANDEM_BLK_OP_FLUSH;
	case REQ_OP_DISCARD:
		return TANDEM_BLK_OP_DISCARD;
	case REQ_OP_WRITE_ZEROES:
		return TANDEM_BLK_OP_WRITE_ZEROES;
	default:
		return U8_MAX;
	}
}

/* ---- blk-mq ---- */

static blk_status_t tandem_queue_rq(struct blk_mq_hw_ctx *hctx,
				    const struct blk_mq_queue_data *bd)
{
	struct tandem_queue *tq = hctx->driver_data;
	struct tandem_dev *dev = tq->dev;
	struct request *rq = bd->rq;
	struct tandem_tag *t = &tq->tags[rq->tag];
	u32 bytes = blk_rq_bytes(rq);
	u8 op = tandem_sqe_op(rq);
	struct tandem_ring *ring;
	struct tandem_blk_sqe *sqe;
	bool wake;

	if (op == U8_MAX)
		return BLK_STS_NOTSUPP;
	if ((op == TANDEM_BLK_OP_READ || op == TANDEM_BLK_OP_WRITE) &&
	    bytes > dev->params.max_io_bytes)
		return BLK_STS_IOERR;

	spin_lock(&tq->lock);
	ring = tq->ring;
	if (!ring) {
		/* No server: fail at once. */
		spin_unlock(&tq->lock);
		return BLK_STS_IOERR;
	}
	if (t->state == TANDEM_TAG_QUARANTINED) {
		/* The server may still use the slot: wait for it, but not forever. */
		bool expired = time_after_eq(jiffies, t->quarantine_end);

		spin_unlock(&tq->lock);
		return expired ? BLK_STS_IOERR : BLK_STS_RESOURCE;
	}
	if (WARN_ON_ONCE(t->state != TANDEM_TAG_IDLE)) {
		spin_unlock(&tq->lock);
		return BLK_STS_IOERR;
	}
	t->state = TANDEM_TAG_RESERVED;
	spin_unlock(&tq->lock);

	blk_mq_start_request(rq);
	/* The ring stays mapped until release() has quiesced this queue. */
	if (op == TANDEM_BLK_OP_WRITE)
		tandem_copy_to_slot(rq, ring->data + (size_t)rq->tag * dev->layout.data_slot_size);

	spin_lock(&tq->lock);
	if (tq->ring != ring) {
		/* The server detached meanwhile. */
		t->state = TANDEM_TAG_IDLE;
		spin_unlock(&tq->lock);
		return BLK_STS_IOERR;
	}
	t->seq++;
	t->rq = rq;
	t->state = TANDEM_TAG_INFLIGHT;
	sqe = &ring->sq[tq->sq_prod & (dev->layout.sq_entries - 1)];
	sqe->tag = rq->tag;
	sqe->op = op;
	sqe->flags = op == TANDEM_BLK_OP_WRITE && (rq->cmd_flags & REQ_FUA) ?
		     TANDEM_BLK_SQE_F_FUA : 0;
	sqe->seq = t->seq;
	if (op == TANDEM_BLK_OP_FLUSH) {
		/* The flush machinery's request carries no sector (it is -1). */
		sqe->offset = 0;
		sqe->length = 0;
	} else {
		sqe->offset = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
		sqe->length = bytes;
	}
	sqe->reserved0 = 0;
	sqe->reserved1 = 0;
	tq->sq_prod++;
	/* Release: the descriptor and the slot's data before the index the server acquires. */
	smp_store_release(&ring->hdr->sq_prod, tq->sq_prod);
	/* Pairs with the server's barrier between setting NEED_WAKEUP and re-reading sq_prod. */
	smp_mb();
	wake = tq->evfd && (READ_ONCE(ring->hdr->flags) & TANDEM_BLK_RING_NEED_WAKEUP);
	if (wake)
		eventfd_signal(tq->evfd, 1);
	spin_unlock(&tq->lock);
	return BLK_STS_OK;
}

static enum blk_eh_timer_return tandem_timeout(struct request *rq)
{
	struct tandem_queue *tq = rq->mq_hctx->driver_data;
	struct tandem_dev *dev = tq->dev;
	struct tandem_tag *t = &tq->tags[rq->tag];
	u32 seq;

	spin_lock(&tq->lock);
	if (t->state != TANDEM_TAG_INFLIGHT || t->rq != rq) {
		/* Being completed or still being submitted: its owner ends it. */
		spin_unlock(&tq->lock);
		return BLK_EH_RESET_TIMER;
	}
	t->state = TANDEM_TAG_QUARANTINED;
	t->rq = NULL;
	t->quarantine_end = jiffies + dev->timeout;
	seq = t->seq;
	spin_unlock(&tq->lock);

	pr_warn_ratelimited("%s: queue %u tag %u seq %u timed out\n", dev->disk->disk_name,
			    tq->qid, rq->tag, seq);
	blk_mq_end_request(rq, BLK_STS_TIMEOUT);
	return BLK_EH_DONE;
}

static int tandem_init_hctx(struct blk_mq_hw_ctx *hctx, void *data, unsigned int hctx_idx)
{
	struct tandem_dev *dev = data;

	hctx->driver_data = &dev->queues[hctx_idx];
	return 0;
}

static const struct blk_mq_ops tandem_mq_ops = {
	.queue_rq = tandem_queue_rq,
	.timeout = tandem_timeout,
	.init_hctx = tandem_init_hctx,
};

/*
 * COMMIT: reaps the queue's completions. Returns how many completions were reaped (stale ones
 * included) or a negative errno.
 */
#define TANDEM_REAP_BATCH 32

static long tandem_commit(struct tandem_session *s, unsigned long qid)
{
	struct tandem_dev *dev = s->dev;
	struct tandem_queue *tq;
	struct tandem_ring *ring;
	u32 mask = dev->layout.cq_entries - 1;
	long reaped = 0;

	if (qid >= dev->params.nr_queues)
		return -EINVAL;
	tq = &dev->queues[qid];
	ring = &s->rings[qid];

	for (;;) {
		struct request *done[TANDEM_REAP_BATCH];
		blk_status_t status[TANDEM_REAP_BATCH];
		unsigned int n = 0, i;
		u32 prod;

		spin_lock(&tq->lock);
		/* Acquire: pairs with the server's release of cq_prod after its completions. */
		prod = smp_load_acquire(&ring->hdr->cq_prod);
		if (prod - tq->cq_cons > dev->layout.cq_entries) {
			spin_unlock(&tq->lock);
			pr_warn_ratelimited("%s: queue %u: cq_prod %u is past the ring\n",
					    dev->disk->disk_name, tq->qid, prod);
			return -EPROTO;
		}
		while (tq->cq_cons != prod && n < TANDEM_REAP_BATCH) {
			const struct tandem_blk_cqe *shared = &ring->cq[tq->cq_cons & mask];
			struct tandem_blk_cqe cqe;
			struct tandem_tag *t;

			/* The server can write the entry at any time: read each field once. */
			cqe.tag = READ_ONCE(shared->tag);
			cqe.reserved0 = READ_ONCE(shared->reserved0);
			cqe.seq = READ_ONCE(shared->seq);
			cqe.result = READ_ONCE(shared->result);
			cqe.reserved1 = READ_ONCE(shared->reserved1);
			tq->cq_cons++;
			reaped++;
			if (cqe.tag >= dev->params.queue_depth)
				continue;
			t = &tq->tags[cqe.tag];
			if (t->seq != cqe.seq)
				continue;	/* stale or forged */
			if (t->state == TANDEM_TAG_QUARANTINED) {
				t->state = TANDEM_TAG_IDLE;	/* the slot is free again */
				continue;
			}
			if (t->state != TANDEM_TAG_INFLIGHT)
				continue;
			if (cqe.reserved0 || cqe.reserved1 || cqe.result > 0 ||
			    cqe.result < -MAX_ERRNO)
				status[n] = BLK_STS_IOERR;
			else
				status[n] = errno_to_blk_status(cqe.result);
			done[n++] = t->rq;
			t->rq = NULL;
			t->state = TANDEM_TAG_IDLE;
		}
		/* Release: the completions are read before the server may reuse their entries. */
		smp_store_release(&ring->hdr->cq_cons, tq->cq_cons);
		spin_unlock(&tq->lock);

		for (i = 0; i < n; i++) {
			struct request *rq = done[i];
			u8 *slot = ring->data + (size_t)rq->tag * dev->layout.data_slot_size;

			if (status[i] == BLK_STS_OK && req_op(rq) == REQ_OP_READ)
				tandem_copy_from_slot(rq, slot);
			blk_mq_end_request(rq, status[i]);
		}
		if (!n)
			break;
	}
	return reaped;
}

/* ---- the server's char device ---- */

static void tandem_free_rings(struct tandem_session *s, unsigned int nr)
{
	unsigned int q;

	for (q = 0; q < nr; q++)
		vfree(s->rings[q].mem);
}

static int tandem_srv_open(struct inode *inode, struct file *file)
{
	struct tandem_dev *dev = container_of(inode->i_cdev, struct tandem_dev, cdev);
	const struct tandem_blk_layout *l = &dev->layout;
	unsigned int nr = dev->params.nr_queues;
	struct tandem_session *s;
	unsigned int q;
	int ret;

	/* Reserve the device first: a refused opener allocates nothing. */
	mutex_lock(&dev->mutex);
	if (dev->deleted || !dev->live)
		ret = -ENODEV;
	else if (dev->attached || dev->attaching)
		ret = -EBUSY;
	else
		ret = 0;
	if (!ret)
		dev->attaching = true;
	mutex_unlock(&dev->mutex);
	if (ret)
		return ret;

	s = kzalloc(struct_size(s, rings, nr), GFP_KERNEL);
	if (!s) {
		ret = -ENOMEM;
		goto out_unreserve;
	}
	s->dev = dev;
	for (q = 0; q < nr; q++) {
		struct tandem_ring *r = &s->rings[q];

		r->mem = vmalloc_user(l->region_size);
		if (!r->mem) {
			ret = -ENOMEM;
			goto out_free_rings;
		}
		r->hdr = r->mem + l->header_offset;
		r->sq = r->mem + l->sq_offset;
		r->cq = r->mem + l->cq_offset;
		r->data = r->mem + l->data_offset;
	}

	mutex_lock(&dev->mutex);
	for (q = 0; q < nr; q++) {
		struct tandem_queue *tq = &dev->queues[q];

		spin_lock(&tq->lock);
		tq->sq_prod = 0;
		tq->cq_cons = 0;
		tq->ring = &s->rings[q];
		spin_unlock(&tq->lock);
	}
	dev->attached = true;
	dev->attaching = false;
	pr_info("%s: server attached\n", dev->disk->disk_name);
	mutex_unlock(&dev->mutex);

	file->private_data = s;
	return nonseekable_open(inode, file);

out_free_rings:
	tandem_free_rings(s, nr);
	kfree(s);
out_unreserve:
	mutex_lock(&dev->mutex);
	dev->attaching = false;
	mutex_unlock(&dev->mutex);
	return ret;
}

/* Fails every request the server still holds; forgets quarantines. Caller holds dev->mutex. */
static void tandem_fail_inflight(struct tandem_queue *tq)
{
	unsigned int tag;

	for (tag = 0; tag < tq->dev->params.queue_depth; tag++) {
		struct tandem_tag *t = &tq->tags[tag];
		struct request *rq = NULL;

		spin_lock(&tq->lock);
		if (t->state == TANDEM_TAG_INFLIGHT) {
			rq = t->rq;
			t->rq = NULL;
			t->state = TANDEM_TAG_IDLE;
		} else if (t->state == TANDEM_TAG_QUARANTINED) {
			t->state = TANDEM_TAG_IDLE;
		}
		spin_unlock(&tq->lock);
		if (rq)
			blk_mq_end_request(rq, BLK_STS_IOERR);
	}
}

static int tandem_srv_release(struct inode *inode, struct file *file)
{
	struct tandem_session *s = file->private_data;
	struct tandem_dev *dev = s->dev;
	unsigned int nr = dev->params.nr_queues;
	unsigned int q;

	mutex_lock(&dev->mutex);
	for (q = 0; q < nr; q++) {
		struct tandem_queue *tq = &dev->queues[q];
		struct eventfd_ctx *evfd;

		spin_lock(&tq->lock);
		tq->ring = NULL;
		evfd = tq->evfd;
		tq->evfd = NULL;
		spin_unlock(&tq->lock);
		if (evfd)
			eventfd_ctx_put(evfd);
	}
	/* Waits for every ->queue_rq that may still be copying into a ring. */
	blk_mq_quiesce_queue(dev->disk->queue);
	blk_mq_unquiesce_queue(dev->disk->queue);
	for (q = 0; q < nr; q++)
		tandem_fail_inflight(&dev->queues[q]);
	/*
	 * Requests waiting for a quarantined tag now fail at once. Still under dev->mutex: once
	 * attached is false a DEL_DEV may free the disk.
	 */
	blk_mq_run_hw_queues(dev->disk->queue, true);
	pr_info("%s: server detached\n", dev->disk->disk_name);
	dev->attached = false;
	mutex_unlock(&dev->mutex);

	tandem_free_rings(s, nr);
	kfree(s);
	return 0;
}

static int tandem_srv_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct tandem_session *s = file->private_data;
	struct tandem_dev *dev = s->dev;
	const struct tandem_blk_layout *l = &dev->layout;
	unsigned long stride_pages = l->queue_stride >> PAGE_SHIFT;
	unsigned long q;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff % stride_pages)
		return -EINVAL;
	q = vma->vm_pgoff / stride_pages;
	if (q >= dev->params.nr_queues)
		return -EINVAL;
	if (vma->vm_end - vma->vm_start != l->region_size)
		return -EINVAL;
	return remap_vmalloc_range(vma, s->rings[q].mem, 0);
}

static void tandem_fill_info(struct tandem_dev *dev, struct tandem_blk_dev_info *info)
{
	dev_t ddevt = disk_devt(dev->disk);

	memset(info, 0, sizeof(*info));
	info->dev_id = dev->id;
	mutex_lock(&dev->mutex);
	if (dev->attached)
		info->state |= TANDEM_BLK_STATE_ATTACHED;
	mutex_unlock(&dev->mutex);
	if (disk_openers(dev->disk))
		info->state |= TANDEM_BLK_STATE_OPEN;
	info->params = dev->params;
	info->params.size = sizeof(info->params);
	info->layout = dev->layout;
	info->disk_major = MAJOR(ddevt);
	info->disk_minor = MINOR(ddevt);
	info->cdev_major = MAJOR(dev->cdev_dev.devt);
	info->cdev_minor = MINOR(dev->cdev_dev.devt);
}

static long tandem_get_info(struct tandem_dev *dev, void __user *uarg)
{
	struct tandem_blk_dev_info info;
	int usize;

	usize = tandem_copy_in(&info, sizeof(info), sizeof(info), uarg);
	if (usize < 0)
		return usize;
	if (info.state || info.reserved0)
		return -EINVAL;
	tandem_fill_info(dev, &info);
	return tandem_copy_out(uarg, &info, sizeof(info), usize);
}

static long tandem_set_eventfd(struct tandem_session *s, void __user *uarg)
{
	struct tandem_dev *dev = s->dev;
	struct tandem_blk_eventfd arg;
	struct eventfd_ctx *evfd = NULL, *old;
	struct tandem_queue *tq;
	int usize;

	usize = tandem_copy_in(&arg, sizeof(arg), sizeof(arg), uarg);
	if (usize < 0)
		return usize;
	if (arg.reserved0 || !tandem_reserved_zero(arg.reserved, ARRAY_SIZE(arg.reserved)))
		return -EINVAL;
	if (arg.queue >= dev->params.nr_queues)
		return -EINVAL;
	if (arg.fd >= 0) {
		evfd = eventfd_ctx_fdget(arg.fd);
		if (IS_ERR(evfd))
			return PTR_ERR(evfd);
	} else if (arg.fd != -1) {
		return -EINVAL;
	}
	tq = &dev->queues[arg.queue];
	spin_lock(&tq->lock);
	old = tq->evfd;
	tq->evfd = evfd;
	spin_unlock(&tq->lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static long tandem_srv_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct tandem_session *s = file->private_data;
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != TANDEM_BLK_IOC_MAGIC)
		return -ENOTTY;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(TANDEM_BLK_IOC_COMMIT):
		return tandem_commit(s, arg);
	case _IOC_NR(TANDEM_BLK_IOC_GET_DEV_INFO):
		return tandem_get_info(s->dev, uarg);
	case _IOC_NR(TANDEM_BLK_IOC_SET_EVENTFD):
		return tandem_set_eventfd(s, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations tandem_srv_fops = {
	.owner = THIS_MODULE,
	.open = tandem_srv_open,
	.release = tandem_srv_release,
	.mmap = tandem_srv_mmap,
	.unlocked_ioctl = tandem_srv_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

/* ---- devices ---- */

static void tandem_free_queues(struct tandem_dev *dev)
{
	unsigned int q;

	if (!dev->queues)
		return;
	for (q = 0; q < dev->params.nr_queues; q++)
		kfree(dev->queues[q].tags);
	kfree(dev->queues);
}

/* The last reference is gone: no file, no disk, no registry entry. */
static void tandem_dev_release(struct device *d)
{
	struct tandem_dev *dev = container_of(d, struct tandem_dev, cdev_dev);

	blk_mq_free_tag_set(&dev->tag_set);
	tandem_free_queues(dev);
	mutex_destroy(&dev->mutex);
	kfree(dev);
}

static void tandem_free_disk(struct gendisk *disk)
{
	struct tandem_dev *dev = disk->private_data;

	put_device(&dev->cdev_dev);
}

/* Called with disk->open_mutex held: refuses a device DEL_DEV has started to delete. */
static int tandem_bdev_open(struct block_device *bdev, fmode_t mode)
{
	struct tandem_dev *dev = bdev->bd_disk->private_data;
	int ret = 0;

	mutex_lock(&dev->mutex);
	if (dev->deleted)
		ret = -ENXIO;
	mutex_unlock(&dev->mutex);
	return ret;
}

static const struct block_device_operations tandem_bdev_ops = {
	.owner = THIS_MODULE,
	.open = tandem_bdev_open,
	.free_disk = tandem_free_disk,
};

static int tandem_alloc_queues(struct tandem_dev *dev)
{
	unsigned int q;

	dev->queues = kcalloc(dev->params.nr_queues, sizeof(*dev->queues), GFP_KERNEL);
	if (!dev->queues)
		return -ENOMEM;
	for (q = 0; q < dev->params.nr_queues; q++) {
		struct tandem_queue *tq = &dev->queues[q];

		spin_lock_init(&tq->lock);
		tq->dev = dev;
		tq->qid = q;
		tq->tags = kcalloc(dev->params.queue_depth, sizeof(*tq->tags), GFP_KERNEL);
		if (!tq->tags)
			return -ENOMEM;	/* the caller frees what was allocated */
	}
	return 0;
}

static void tandem_set_limits(struct tandem_dev *dev)
{
	const struct tandem_blk_params *p = &dev->params;
	struct request_queue *q = dev->disk->queue;
	unsigned int zero_sectors = TANDEM_BLK_MAX_DISCARD_BYTES >> SECTOR_SHIFT;

	blk_queue_logical_block_size(q, p->logical_bs);
	blk_queue_physical_block_size(q, p->physical_bs);
	blk_queue_io_min(q, p->physical_bs);
	blk_queue_max_hw_sectors(q, p->max_io_bytes >> SECTOR_SHIFT);
	blk_queue_max_segments(q, USHRT_MAX);
	blk_queue_max_segment_size(q, UINT_MAX);
	blk_queue_rq_timeout(q, dev->timeout);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	blk_queue_write_cache(q, p->features & TANDEM_BLK_F_FLUSH, p->features & TANDEM_BLK_F_FUA);
	if (p->features & TANDEM_BLK_F_DISCARD) {
		q->limits.discard_granularity = p->physical_bs;
		blk_queue_max_discard_sectors(q, zero_sectors);
	}
	if (p->features & TANDEM_BLK_F_WRITE_ZEROES)
		blk_queue_max_write_zeroes_sectors(q, zero_sectors);
}

/* ADD_DEV. Caller holds tandem_ctl_mutex. */
static int tandem_add_dev(struct tandem_blk_params *p)
{
	struct tandem_blk_layout layout;
	struct tandem_dev *dev;
	struct gendisk *disk;
	int ret, id;

	ret = tandem_check_params(p, &layout);
	if (ret)
		return ret;
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	dev->params = *p;
	dev->params.size = sizeof(dev->params);
	dev->layout = layout;
	dev->timeout = msecs_to_jiffies(p->timeout_ms);
	mutex_init(&dev->mutex);
	ret = tandem_alloc_queues(dev);
	if (ret)
		goto out_free_queues;

	if (p->dev_id == TANDEM_BLK_DEV_ID_ANY)
		id = idr_alloc(&tandem_idr, dev, 0, TANDEM_BLK_MAX_DEVS, GFP_KERNEL);
	else if (p->dev_id < TANDEM_BLK_MAX_DEVS)
		id = idr_alloc(&tandem_idr, dev, p->dev_id, p->dev_id + 1, GFP_KERNEL);
	else
		id = -EINVAL;
	if (id < 0) {
		/* A taken id is -EEXIST; no free id at all stays -ENOSPC. */
		ret = id == -ENOSPC && p->dev_id != TANDEM_BLK_DEV_ID_ANY ? -EEXIST : id;
		goto out_free_queues;
	}
	dev->id = id;
	dev->params.dev_id = id;

	dev->tag_set.ops = &tandem_mq_ops;
	dev->tag_set.nr_hw_queues = p->nr_queues;
	dev->tag_set.queue_depth = p->queue_depth;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.timeout = dev->timeout;
	dev->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
	dev->tag_set.driver_data = dev;
	ret = blk_mq_alloc_tag_set(&dev->tag_set);
	if (ret)
		goto out_remove_id;

	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto out_free_tag_set;
	}
	dev->disk = disk;
	disk->fops = &tandem_bdev_ops;
	disk->private_data = dev;
	disk->flags |= GENHD_FL_NO_PART;	/* minors stay 0: dynamic dev_t */
	snprintf(disk->disk_name, sizeof(disk->disk_name), "tandem%d", id);
	set_capacity(disk, p->dev_size >> SECTOR_SHIFT);
	tandem_set_limits(dev);

	/* From here on the device's release frees the tag set, the queues and dev. */
	device_initialize(&dev->cdev_dev);
	dev->cdev_dev.class = tandem_class;
	dev->cdev_dev.devt = MKDEV(MAJOR(tandem_chr_devt), id);
	dev->cdev_dev.release = tandem_dev_release;
	ret = dev_set_name(&dev->cdev_dev, "tandemc%d", id);
	if (ret)
		goto out_put_disk;
	cdev_init(&dev->cdev, &tandem_srv_fops);
	dev->cdev.owner = THIS_MODULE;
	ret = cdev_device_add(&dev->cdev, &dev->cdev_dev);
	if (ret)
		goto out_put_disk;

	get_device(&dev->cdev_dev);	/* the disk's, dropped by tandem_free_disk() */
	ret = add_disk(disk);
	if (ret) {
		/* ->free_disk is not called for a disk that was never added */
		put_device(&dev->cdev_dev);
		goto out_del_cdev;
	}
	mutex_lock(&dev->mutex);
	dev->live = true;	/* servers may attach from now on */
	mutex_unlock(&dev->mutex);
	pr_info("%s: added, %llu bytes, %u queue(s) of depth %u, features 0x%llx\n",
		disk->disk_name, p->dev_size, p->nr_queues, p->queue_depth,
		dev->params.features);
	*p = dev->params;
	return 0;

out_del_cdev:
	cdev_device_del(&dev->cdev, &dev->cdev_dev);
out_put_disk:
	put_disk(disk);
	idr_remove(&tandem_idr, id);
	put_device(&dev->cdev_dev);
	return ret;

out_free_tag_set:
	blk_mq_free_tag_set(&dev->tag_set);
out_remove_id:
	idr_remove(&tandem_idr, id);
out_free_queues:
	tandem_free_queues(dev);
	mutex_destroy(&dev->mutex);
	kfree(dev);
	return ret;
}

/* Removes a device nobody uses. Caller holds tandem_ctl_mutex. */
static int tandem_del_dev(struct tandem_dev *dev, bool force)
{
	/*
	 * disk->open_mutex before dev->mutex (the order of tandem_bdev_open()): with both held
	 * the openers count is stable, and an open that comes later sees deleted and fails.
	 */
	mutex_lock(&dev->disk->open_mutex);
	mutex_lock(&dev->mutex);
	if (!force && (dev->attached || dev->attaching || disk_openers(dev->disk))) {
		mutex_unlock(&dev->mutex);
		mutex_unlock(&dev->disk->open_mutex);
		return -EBUSY;
	}
	dev->deleted = true;
	mutex_unlock(&dev->mutex);
	mutex_unlock(&dev->disk->open_mutex);

	idr_remove(&tandem_idr, dev->id);
	pr_info("%s: deleted\n", dev->disk->disk_name);
	del_gendisk(dev->disk);
	put_disk(dev->disk);
	cdev_device_del(&dev->cdev, &dev->cdev_dev);
	put_device(&dev->cdev_dev);
	return 0;
}

/* ---- the control device ---- */

static long tandem_ctl_features(void __user *uarg)
{
	struct tandem_blk_features f;
	int usize;

	usize = tandem_copy_in(&f, sizeof(f), sizeof(f), uarg);
	if (usize < 0)
		return usize;
	memset(&f, 0, sizeof(f));
	f.version = TANDEM_BLK_ABI_VERSION;
	f.features = TANDEM_FEATURES;
	f.max_devs = TANDEM_BLK_MAX_DEVS;
	f.max_queues = tandem_max_queues();
	f.max_queue_depth = TANDEM_BLK_MAX_QUEUE_DEPTH;
	f.max_io_bytes = TANDEM_BLK_MAX_IO_BYTES;
	return tandem_copy_out(uarg, &f, sizeof(f), usize);
}

static long tandem_ctl_add(void __user *uarg)
{
	struct tandem_blk_params p;
	int usize, ret;

	usize = tandem_copy_in(&p, sizeof(p), sizeof(p), uarg);
	if (usize < 0)
		return usize;
	mutex_lock(&tandem_ctl_mutex);
	ret = tandem_add_dev(&p);
	mutex_unlock(&tandem_ctl_mutex);
	if (ret)
		return ret;
	return tandem_copy_out(uarg, &p, sizeof(p), usize);
}

static long tandem_ctl_del(void __user *uarg)
{
	struct tandem_blk_dev_cmd c;
	struct tandem_dev *dev;
	int usize, ret;

	usize = tandem_copy_in(&c, sizeof(c), sizeof(c), uarg);
	if (usize < 0)
		return usize;
	if (!tandem_reserved_zero(c.reserved, ARRAY_SIZE(c.reserved)))
		return -EINVAL;
	mutex_lock(&tandem_ctl_mutex);
	dev = idr_find(&tandem_idr, c.dev_id);
	ret = dev ? tandem_del_dev(dev, false) : -ENODEV;
	mutex_unlock(&tandem_ctl_mutex);
	return ret;
}

static long tandem_ctl_info(void __user *uarg)
{
	struct tandem_blk_dev_info info;
	struct tandem_dev *dev;
	int usize;

	usize = tandem_copy_in(&info, sizeof(info), sizeof(info), uarg);
	if (usize < 0)
		return usize;
	if (info.state || info.reserved0)
		return -EINVAL;
	mutex_lock(&tandem_ctl_mutex);
	dev = idr_find(&tandem_idr, info.dev_id);
	if (dev)
		tandem_fill_info(dev, &info);
	mutex_unlock(&tandem_ctl_mutex);
	if (!dev)
		return -ENODEV;
	return tandem_copy_out(uarg, &info, sizeof(info), usize);
}

static long tandem_ctl_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	if (_IOC_TYPE(cmd) != TANDEM_BLK_IOC_MAGIC)
		return -ENOTTY;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	switch (_IOC_NR(cmd)) {
	case _IOC_NR(TANDEM_BLK_IOC_GET_FEATURES):
		return tandem_ctl_features(uarg);
	case _IOC_NR(TANDEM_BLK_IOC_ADD_DEV):
		return tandem_ctl_add(uarg);
	case _IOC_NR(TANDEM_BLK_IOC_DEL_DEV):
		return tandem_ctl_del(uarg);
	case _IOC_NR(TANDEM_BLK_IOC_GET_DEV_INFO):
		return tandem_ctl_info(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations tandem_ctl_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.unlocked_ioctl = tandem_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

static struct miscdevice tandem_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tandem-control",
	.fops = &tandem_ctl_fops,
};

static int __init tandem_init(void)
{
	int ret;

	tandem_check_abi();
	ret = alloc_chrdev_region(&tandem_chr_devt, 0, TANDEM_BLK_MAX_DEVS, "tandemc");
	if (ret)
		return ret;
	tandem_class = class_create(THIS_MODULE, "tandem");
	if (IS_ERR(tandem_class)) {
		ret = PTR_ERR(tandem_class);
		goto out_unregister_chrdev;
	}
	ret = misc_register(&tandem_misc);
	if (ret)
		goto out_destroy_class;
	pr_info("loaded, ABI version %d\n", TANDEM_BLK_ABI_VERSION);
	return 0;

out_destroy_class:
	class_destroy(tandem_class);
out_unregister_chrdev:
	unregister_chrdev_region(tandem_chr_devt, TANDEM_BLK_MAX_DEVS);
	return ret;
}

static void __exit tandem_exit(void)
{
	struct tandem_dev *dev;
	int id;

	misc_deregister(&tandem_misc);
	/* Open files and disks hold module references: nothing is attached or open here. */
	mutex_lock(&tandem_ctl_mutex);
	idr_for_each_entry(&tandem_idr, dev, id)
		tandem_del_dev(dev, true);
	mutex_unlock(&tandem_ctl_mutex);
	idr_destroy(&tandem_idr);
	class_destroy(tandem_class);
	unregister_chrdev_region(tandem_chr_devt, TANDEM_BLK_MAX_DEVS);
	pr_info("unloaded\n");
}

module_init(tandem_init);
module_exit(tandem_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("tandem");
MODULE_DESCRIPTION("tandem block shim: a blk-mq device served from user space");
