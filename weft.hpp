// weft/weft.hpp — everything a user of the Evented side needs, in one include.
#pragma once

#include <weft/runtime/config.hpp>
#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/runtime.hpp>
#include <weft/runtime/stats.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/threaded/offload.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/runtime/timer.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/semaphore.hpp>
