// SPDX-License-Identifier: MIT
/* A C++ program built against the installed library (.ci/run): every
 * public header must compile as C++ and link without name mangling
 * (VZ_BEGIN_DECLS), and the running library must be the version the
 * headers describe. It spawns an actor, posts to it from this thread and
 * waits for the answer through an atomic, then stops cleanly. */
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include <veloz.h>

namespace {

enum { MSG_HELLO = VZ_MSG_USER };

std::atomic<int> handled{0};

void receive(vz_actor *, void *, const vz_msg *m)
{
	if (vz_msg_type(m) == MSG_HELLO && vz_msg_len(m) == 6 &&
	    std::memcmp(vz_msg_data(m), "hello", 6) == 0)
		handled.fetch_add(1);
}

int fail(const char *what, int rc)
{
	std::fprintf(stderr, "consumer.cpp: %s: %s\n", what, vz_strerror(rc));
	return 1;
}

} // namespace

int main()
{
	if (vz_version() != VZ_VERSION_NUMBER) {
		std::fprintf(stderr, "library %s, headers %s\n", vz_version_string(),
			     VZ_VERSION_STRING);
		return 1;
	}
	vz_config cfg;
	vz_config_default(&cfg);
	cfg.nshards = 1;
	vz_runtime *rt = nullptr;
	int rc = vz_runtime_create(&cfg, &rt);
	if (rc < 0)
		return fail("create", rc);
	vz_actor_spec spec{};
	spec.name = "cxx";
	spec.receive = receive;
	vz_ref ref = VZ_REF_NULL;
	if ((rc = vz_spawn(rt, 0, &spec, nullptr, &ref)) < 0)
		return fail("spawn", rc);
	if ((rc = vz_runtime_start(rt)) < 0)
		return fail("start", rc);
	if ((rc = vz_post(rt, ref, MSG_HELLO, "hello", 6)) < 0)
		return fail("post", rc);
	while (handled.load() == 0)
		std::this_thread::yield();
	if ((rc = vz_runtime_stop(rt)) < 0)
		return fail("stop", rc);
	vz_runtime_destroy(rt);
	std::printf("C++ consumer: veloz %s, message handled\n", vz_version_string());
	return 0;
}
