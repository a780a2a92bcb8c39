package import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import XeroMLCSpawn

/// What a finished process printed and how it ended.
package struct ProcessResult: Sendable {
    /// The exit status, or 128 + the signal that ended the process.
    package var status: Int32
    package var stdout: String
    package var stderr: String
    /// The signal that ended the process, if one did.
    package var signal: Int32?
}

/// A child process of this package's tests and benchmarks (an executable of the package, a database
/// server, a browser driver), started with `posix_spawn`.
///
/// Not Foundation's `Process`: on Linux its `run()` adds a close action for every descriptor up to the
/// highest one open and was seen to crash inside `run()` when a test process had many descriptors open
/// and other tests opened and closed sockets at the same time. Here the pipes are made close-on-exec,
/// the child closes every other descriptor from 3 up with one action, and nothing is shared with other
/// launches.
///
/// Standard output and error are read as they come on threads of their own (so neither pipe can fill
/// up and stall the child); ``output`` shows what has arrived, ``waitFor(_:_:_:)`` waits for a line,
/// ``wait()`` for the end. Standard input is `/dev/null` unless `input` is `.pipe` (then ``closeInput()``
/// ends it).
///
/// `@unchecked Sendable`: mutable state is only touched under `lock`.
package final class RunningProcess: @unchecked Sendable {
    /// Where the child's standard input comes from.
    package enum Input: Sendable { case null, pipe }

    /// The child's process id.
    package let pid: Int32
    private let lock = NSCondition()
    private var stdoutData = Data()
    private var stderrData = Data()
    private var openStreams = 2
    private var ending: (status: Int32, signal: Int32?)?
    private var inputFD: Int32 = -1

    /// Starts `executable` with `arguments` in `directory` (the current one when nil), with this
    /// process's environment changed by `environment`.
    package init(executable: URL, arguments: [String], environment: [String: String] = [:],
                 directory: URL? = nil, input: Input = .null) throws {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }

        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1], inPipe: [Int32] = [-1, -1]
        for (made, wanted) in [(xeroml_pipe_cloexec(&outPipe), true), (xeroml_pipe_cloexec(&errPipe), true),
                               (input == .pipe ? xeroml_pipe_cloexec(&inPipe) : 0, input == .pipe)] where wanted && made != 0 {
            throw ProcessLaunchError(executable: executable.path, reason: String(cString: strerror(made)))
        }
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = xeroml_spawn(&child, executable.path, argv, envp, directory?.path,
                                  input == .pipe ? inPipe[0] : nullFD, outPipe[1], errPipe[1])
        close(outPipe[1])
        close(errPipe[1])
        if nullFD >= 0 { close(nullFD) }
        if input == .pipe { close(inPipe[0]) }
        guard status == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            if input == .pipe { close(inPipe[1]) }
            throw ProcessLaunchError(executable: executable.path, reason: String(cString: strerror(status)))
        }
        pid = child
        inputFD = input == .pipe ? inPipe[1] : -1
        drain(outPipe[0]) { process, data in process.stdoutData.append(data) }
        drain(errPipe[0]) { process, data in process.stderrData.append(data) }
        reap()
    }

    deinit {
        if inputFD >= 0 { close(inputFD) }
    }

    /// Drains `fd` until end of file on a thread of its own, appending under the lock.
    private func drain(_ fd: Int32, _ append: @escaping @Sendable (RunningProcess, Data) -> Void) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                lock.lock()
                append(self, Data(buffer[0..<count]))
                lock.broadcast()
                lock.unlock()
            }
            close(fd)
            lock.lock()
            openStreams -= 1
            lock.broadcast()
            lock.unlock()
        }
    }

    /// Waits for the child on a thread of its own and records how it ended.
    private func reap() {
        let pid = self.pid
        Thread.detachNewThread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            // WIFEXITED/WTERMSIG are macros: the low 7 bits are the signal, 0 for a normal exit.
            let signal = status & 0x7f
            let ended: (Int32, Int32?) = signal == 0 ? ((status >> 8) & 0xff, nil) : (128 + signal, signal)
            lock.lock()
            ending = ended
            lock.broadcast()
            lock.unlock()
        }
    }

    /// Whether the child has not exited yet.
    package var isRunning: Bool { lock.withLock { ending == nil } }

    /// What the child printed so far.
    package var output: (stdout: String, stderr: String) {
        lock.withLock { (String(decoding: stdoutData, as: UTF8.self), String(decoding: stderrData, as: UTF8.self)) }
    }

    /// Writes `text` to the child's standard input (`input: .pipe` only).
    package func writeInput(_ text: String) {
        guard inputFD >= 0 else { return }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(inputFD, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }

    /// Closes the child's standard input (`input: .pipe` only): it reads end of file.
    package func closeInput() {
        lock.withLock {
            if inputFD >= 0 { close(inputFD) }
            inputFD = -1
        }
    }

    /// Sends `signal` to the child, if it is still running.
    package func signal(_ signal: Int32) {
        lock.withLock { if ending == nil { _ = kill(pid, signal) } }
    }

    /// Waits for the process to exit and for both pipes to close, off the cooperative pool.
    package func wait() async -> ProcessResult {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                lock.lock()
                while ending == nil || openStreams > 0 { lock.wait() }
                let result = ProcessResult(status: ending!.status, stdout: String(decoding: stdoutData, as: UTF8.self),
                                           stderr: String(decoding: stderrData, as: UTF8.self), signal: ending!.signal)
                lock.unlock()
                continuation.resume(returning: result)
            }
        }
    }

    /// Waits for the process to exit, or gives up after `timeout` (then kills it and says so).
    package func wait(timeout: Duration) async throws -> ProcessResult {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline {
                signal(SIGKILL)
                let (out, err) = output
                throw ProcessTimeout("process \(pid) still running after \(timeout); killed. stdout: \(out) stderr: \(err)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return await wait()
    }

    /// Waits until standard output or error matches `predicate`, or fails after `timeout` or when the
    /// process exits first.
    package func waitFor(_ timeout: Duration = .seconds(20), _ what: String,
                         _ predicate: (String, String) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let running = isRunning
            let (out, err) = output
            if predicate(out, err) { return }
            if !running {
                let status = lock.withLock { ending?.status ?? -1 }
                throw ProcessTimeout("process exited (\(status)) before \(what); stdout: \(out) stderr: \(err)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let (out, err) = output
        throw ProcessTimeout("timed out after \(timeout) waiting for \(what); stdout: \(out) stderr: \(err)")
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace`) and waits for it.
    package func stop(grace: Duration = .seconds(2)) async {
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        signal(SIGKILL)
        closeInput()
        _ = await wait()
    }
}

/// A child process could not be started.
package struct ProcessLaunchError: Error, CustomStringConvertible {
    package var executable: String
    package var reason: String
    package var description: String { "could not start \(executable): \(reason)" }
}

/// A child process did not do what was awaited in time.
package struct ProcessTimeout: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// An executable of this package (e.g. `xeroml`), found next to the running test bundle, else in the
/// package's debug build folder.
package func builtExecutable(_ name: String) -> URL {
    let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var candidates = [testBinary.deletingLastPathComponent().appendingPathComponent(name)]
    if let bundle = Bundle.main.executableURL {
        candidates.append(bundle.deletingLastPathComponent().appendingPathComponent(name))
    }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
}
