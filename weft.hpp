// weft/weft.hpp — the whole public API in one include: the Runtime and its fibers
// (spawn, JoinHandle, this_fiber, Timer), the Threaded side (ThreadPool, offload),
// the sync primitives and Channel, net/ (addresses, resolve, TCP, UDP) and fs/
// (files read and written at offsets).
// The logger's controls (weft/runtime/log.hpp, which pulls in spdlog) are included
// on their own. Installed under <prefix>/include/weft: the headers named here,
// log.hpp, and the detail headers they include; nothing else.
#pragma once

#include <weft/fs/error.hpp>
#include <weft/fs/file.hpp>
#include <weft/fs/stat.hpp>
#include <weft/fs/whole_file.hpp>
#include <weft/net/address.hpp>
#include <weft/net/error.hpp>
#include <weft/net/read_buffer.hpp>
#include <weft/net/resolve.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/udp.hpp>
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
