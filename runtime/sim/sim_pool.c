// SPDX-License-Identifier: MIT
/*
 * The worker pool of a simulated runtime: no worker thread. A submitted
 * job waits in a list until the driver draws a step for it, then runs
 * inline on the driving thread (which is no shard then, as a worker is
 * not) and its completion is posted like a worker's: one
 * VZ_MSG_POOL_DONE through the owner's shard inbox. Which waiting job
 * runs is drawn too: the real pool promises no order between jobs.
 * VZ_SIM_FAULT_POOL makes a drawn job complete with VZ_EIO without
 * running. Results, cancellation and stop follow include/veloz/pool.h.
 */
#include "sim/sim.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

struct vz__sim_job {
	vz_job_id id;
	vz_ref owner;
	uint64_t tag;
	uint64_t deadline_ns;
	vz_job_fn fn;
	void *arg;
	size_t payload_len;
	/* pool.h promises the payload VZ_MSG_ALIGN, like a message's. */
	alignas(VZ_MSG_ALIGN) unsigned char payload[VZ_POOL_MAX_PAYLOAD];
};

/* pool_api.c calls these two for a simulated runtime, on the owner's
 * shard (it checked the thread). */
int vz__sim_pool_submit(vz_sim *sim, vz_ref owner, const vz_job *job, vz_job_id *out);
int vz__sim_pool_cancel(vz_sim *sim, vz_ref owner, vz_job_id id);

int vz__sim_pool_submit(vz_sim *sim, vz_ref owner, const vz_job *job, vz_job_id *out)
{
	struct vz__sim_job *j;

	if (!job || !job->fn || (job->payload_len > 0 && !job->payload))
		return VZ_EINVAL;
	if (job->payload_len > VZ_POOL_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (sim->pool_stopped)
		return VZ_ESTOPPED;
	if (sim->njobs == sim->jobs_cap) {
		uint32_t cap = sim->jobs_cap ? sim->jobs_cap * 2 : 16;
		struct vz__sim_job **jobs = realloc(sim->jobs, cap * sizeof *jobs);

		if (!jobs)
			return VZ_EFULL; /* as a full pool: nothing queued */
		sim->jobs = jobs;
		sim->jobs_cap = cap;
	}
	j = aligned_alloc(alignof(struct vz__sim_job), sizeof *j);
	if (!j)
		return VZ_EFULL;
	j->id.id = sim->next_job++;
	j->owner = owner;
	j->tag = job->tag;
	j->deadline_ns = job->deadline_ns;
	j->fn = job->fn;
	j->arg = job->arg;
	j->payload_len = job->payload_len;
	if (job->payload_len)
		memcpy(j->payload, job->payload, job->payload_len);
	sim->jobs[sim->njobs++] = j;
	if (out)
		*out = j->id;
	return 0;
}

/* Take job i out of the list; the order of the others may change (the
 * last one moves to i), deterministically. */
static struct vz__sim_job *take(vz_sim *sim, uint32_t i)
{
	struct vz__sim_job *j = sim->jobs[i];

	sim->jobs[i] = sim->jobs[--sim->njobs];
	return j;
}

/* Post j's completion with `status` and rlen result bytes in buf (after
 * room for the header) and free j. From a shard (cancel: a local send) or
 * from the driver as no shard (a foreign post), as the real pool does. */
static void complete(vz_sim *sim, struct vz__sim_job *j, int status, unsigned char *buf,
		     size_t rlen)
{
	vz_pool_done d = {
	    .job = j->id, .tag = j->tag, .status = status, .result_len = (uint32_t)rlen};

	memcpy(buf, &d, sizeof d);
	/* A refusal (the owner's runtime stopping) is final, as for a
	 * worker's post that finds the runtime stopped. */
	(void)vz__post_sys(sim->rt, j->owner, VZ_MSG_POOL_DONE, buf, sizeof d + rlen);
	sim->st.pool_jobs++;
	free(j);
}

int vz__sim_pool_cancel(vz_sim *sim, vz_ref owner, vz_job_id id)
{
	unsigned char buf[sizeof(vz_pool_done)];

	if (id.id == 0)
		return VZ_EINVAL;
	for (uint32_t i = 0; i < sim->njobs; i++)
		if (sim->jobs[i]->id.id == id.id && vz_ref_eq(sim->jobs[i]->owner, owner)) {
			complete(sim, take(sim, i), VZ_ECANCELED, buf, 0);
			return 0;
		}
	return VZ_ENOENT;
}

void vz__sim_pool_step(vz_sim *sim)
{
	unsigned char *buf = sim->job_buf;
	struct vz__sim_job *j = take(sim, (uint32_t)vz__sim_below(sim, sim->njobs));
	size_t rlen = 0;
	int status;

	if ((sim->opt.faults & VZ_SIM_FAULT_POOL) && vz__sim_chance(sim, sim->opt.fault_permille)) {
		status = VZ_EIO;
		sim->st.pool_failed++;
	} else if (j->deadline_ns && sim->now_ns > j->deadline_ns) {
		status = VZ_ETIMEDOUT;
	} else {
		rlen = VZ_POOL_MAX_RESULT;
		status =
		    j->fn(j->arg, j->payload, j->payload_len, buf + sizeof(vz_pool_done), &rlen);
		if (rlen > VZ_POOL_MAX_RESULT) {
			status = VZ_ETOOBIG;
			rlen = 0;
		}
	}
	complete(sim, j, status, buf, rlen);
}

/* vz_runtime_stop(), before the state changes: every queued job completes
 * with VZ_ECANCELED (posted while posts are still accepted, then handled
 * or dead-lettered by the stop rounds), and later submissions are
 * refused, as vz__pools_stop() does. */
void vz__sim_pool_stop(vz_sim *sim)
{
	unsigned char buf[sizeof(vz_pool_done)];

	sim->pool_stopped = true;
	while (sim->njobs)
		complete(sim, take(sim, 0), VZ_ECANCELED, buf, 0);
}

void vz__sim_pool_fini(vz_sim *sim)
{
	while (sim->njobs)
		free(sim->jobs[--sim->njobs]);
	free(sim->jobs);
	sim->jobs = NULL;
	sim->jobs_cap = 0;
}
