// tests/sync/sched_test_support.hpp — scheduler settings that tilt a race between
// two threads one way: pin the calling thread (and so the threads it starts) to
// one CPU, and put a thread in SCHED_IDLE, which a wake of a normal thread on that
// CPU usually preempts. Only usually: under load the idle thread may run first, so
// a test using these must hold whichever way the race goes.
#pragma once

#include <pthread.h>
#include <sched.h>

namespace weft::test {

/// Pins the calling thread to the CPU it runs on now; restores its mask on scope
/// exit. Threads started meanwhile inherit the single-CPU mask.
class PinToOneCpu {
 public:
  PinToOneCpu() {
    pthread_getaffinity_np(pthread_self(), sizeof old_, &old_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  }
  ~PinToOneCpu() { pthread_setaffinity_np(pthread_self(), sizeof old_, &old_); }
  PinToOneCpu(const PinToOneCpu&) = delete;
  PinToOneCpu& operator=(const PinToOneCpu&) = delete;

 private:
  cpu_set_t old_;
};

/// Puts the calling thread in SCHED_IDLE; restores its policy on scope exit.
class IdlePolicy {
 public:
  IdlePolicy() {
    pthread_getschedparam(pthread_self(), &policy_, &param_);
    sched_param idle{};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);
  }
  ~IdlePolicy() { pthread_setschedparam(pthread_self(), policy_, &param_); }
  IdlePolicy(const IdlePolicy&) = delete;
  IdlePolicy& operator=(const IdlePolicy&) = delete;

 private:
  int policy_ = SCHED_OTHER;
  sched_param param_{};
};

}  // namespace weft::test
