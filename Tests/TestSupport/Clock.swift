#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Now, in seconds on the monotonic clock.
public func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps `seconds` (restarting after a signal with what is left).
public func pause(_ seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var left = timespec()
    while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
}

/// Polls `condition` until it holds or `seconds` pass, every `step`
/// seconds (for states with no event to wait on: a thread count going
/// down, a line in a child's output); returns whether it held.
public func eventually(_ seconds: Double = 20, every step: Double = 0.005,
                       _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = now() + seconds
    while now() < deadline {
        if try condition() { return true }
        pause(step)  // deadline: polling step of a bounded wait
    }
    return try condition()
}

/// ``eventually(_:every:_:)`` for async code: sleeps with `Task.sleep`, so
/// that it holds no pool thread (the pool has as many threads as cores,
/// and the task under test needs one to start).
public func eventuallyAsync(_ seconds: Double = 20, _ condition: () -> Bool) async -> Bool {
    let deadline = now() + seconds
    while now() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 2_000_000)  // deadline: polling step of a bounded wait
    }
    return condition()
}
