/* SPDX-License-Identifier: MIT */
/* Umbrella header: everything an application of veloz needs. */
#ifndef VELOZ_H
#define VELOZ_H

#include "veloz/actor.h"
#include "veloz/ask.h"
#include "veloz/cluster.h"
#include "veloz/config.h"
#include "veloz/error.h"
#include "veloz/io.h"
#include "veloz/lifecycle.h"
#include "veloz/message.h"
#include "veloz/pool.h"
#include "veloz/port.h"
#include "veloz/producer.h"
#include "veloz/runtime.h"
#include "veloz/sim.h"
#include "veloz/stats.h"
#include "veloz/supervisor.h"
#include "veloz/timer.h"
#include "veloz/version.h"

#endif
