import XCTest

@testable import WaitressServer

/// `ServerMetrics`: words in a slot, histograms, slots shared by workers, and the text format.
final class MetricsTests: XCTestCase {
    private func text(_ metrics: ServerMetrics) -> String {
        String(decoding: metrics.render(), as: UTF8.self)
    }

    private func lines(_ metrics: ServerMetrics, _ prefix: String) -> [String] {
        text(metrics).split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    func testRequestsAreCountedByMethodAndStatusClass() {
        let metrics = ServerMetrics()
        metrics.begin(threads: 4, connectionLimit: 100)
        for (method, status) in [("GET", 200), ("GET", 204), ("POST", 302), ("BREW", 418), ("GET", 503)] {
            Array(method.utf8).withUnsafeBytes {
                metrics.countRequest(method: ServerMetrics.methodIndex($0), status: status, seconds: 0.001)
            }
        }
        metrics.countRequest(method: ServerMetrics.methods.count - 1, status: 400, seconds: 0)
        XCTAssertEqual(
            lines(metrics, "waitress_requests_total{"),
            [
                "waitress_requests_total{worker=\"0\",method=\"GET\",status=\"2xx\"} 2",
                "waitress_requests_total{worker=\"0\",method=\"GET\",status=\"5xx\"} 1",
                "waitress_requests_total{worker=\"0\",method=\"POST\",status=\"3xx\"} 1",
                "waitress_requests_total{worker=\"0\",method=\"other\",status=\"4xx\"} 2",
            ])
        XCTAssertTrue(text(metrics).contains("# TYPE waitress_requests_total counter\n"))
    }

    func testHistogramBucketsAreCumulativeWithSumAndCount() {
        let metrics = ServerMetrics()
        metrics.begin(threads: 1, connectionLimit: 1)
        for seconds in [0.00005, 0.0003, 0.0003, 0.2, 100.0] { metrics.observe(.app, seconds: seconds) }
        let samples = lines(metrics, "waitress_app_duration_seconds")
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_bucket{worker=\"0\",le=\"0.0001\"} 1"))
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_bucket{worker=\"0\",le=\"0.00025\"} 1"))
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_bucket{worker=\"0\",le=\"0.0005\"} 3"))
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_bucket{worker=\"0\",le=\"0.25\"} 4"))
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_bucket{worker=\"0\",le=\"30.0\"} 4"))
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"} 5"))
        XCTAssertTrue(samples.contains("waitress_app_duration_seconds_count{worker=\"0\"} 5"))
        let sum = samples.first { $0.hasPrefix("waitress_app_duration_seconds_sum") }!
        XCTAssertEqual(Double(sum.split(separator: " ").last!)!, 100.20065, accuracy: 1e-6)
    }

    func testBucketsMatchTheBounds() {
        for (index, bound) in ServerMetrics.bounds.enumerated() {
            let nanos = UInt64((bound * 1e9).rounded())
            XCTAssertEqual(ServerMetrics.bucket(nanos), index, "at \(bound) s")
            XCTAssertEqual(ServerMetrics.bucket(nanos + 1), index + 1, "just over \(bound) s")
        }
        XCTAssertEqual(ServerMetrics.bucket(0), 0)
        XCTAssertEqual(ServerMetrics.bucket(.max), ServerMetrics.bounds.count)
    }

    func testWorkersShareMemoryAndANewWorkerContinuesItsNumbersCounters() throws {
        let bytes = 3 * ServerMetrics.slotBytes
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        XCTAssertNil(ServerMetrics(sharedMemory: memory, bytes: bytes, slot: 3))
        XCTAssertNil(ServerMetrics(sharedMemory: memory + 4, bytes: bytes - 4, slot: 0), "unaligned")
        let first = try XCTUnwrap(ServerMetrics(sharedMemory: memory, bytes: bytes, slot: 0))
        let second = try XCTUnwrap(ServerMetrics(sharedMemory: memory, bytes: bytes, slot: 2))
        first.begin(threads: 4, connectionLimit: 100)
        second.begin(threads: 4, connectionLimit: 100)
        first.add(.connectionsAccepted, 5)
        first.set(.connectionsOpen, 3)
        second.add(.connectionsAccepted, 2)
        // Either worker renders both, labelled by worker number (slot + 1).
        for metrics in [first, second] {
            XCTAssertEqual(
                lines(metrics, "waitress_connections_accepted_total{"),
                [
                    "waitress_connections_accepted_total{worker=\"1\"} 5",
                    "waitress_connections_accepted_total{worker=\"3\"} 2",
                ])
            XCTAssertEqual(lines(metrics, "waitress_workers "), ["waitress_workers 2"])
        }
        // The supervisor reaps worker 1 (its pid word is zeroed): its counters stay in the
        // totals, its gauges go.
        memory.storeBytes(of: UInt64(0), as: UInt64.self)
        XCTAssertEqual(lines(second, "waitress_workers "), ["waitress_workers 1"])
        XCTAssertEqual(lines(second, "waitress_connections_open{"), ["waitress_connections_open{worker=\"3\"} 0"])
        XCTAssertTrue(lines(second, "waitress_connections_accepted_total{").contains(
            "waitress_connections_accepted_total{worker=\"1\"} 5"))
        // Its replacement continues the counters and starts its gauges at zero.
        let replacement = try XCTUnwrap(ServerMetrics(sharedMemory: memory, bytes: bytes, slot: 0))
        replacement.begin(threads: 4, connectionLimit: 100)
        replacement.add(.connectionsAccepted)
        XCTAssertTrue(lines(second, "waitress_connections_accepted_total{").contains(
            "waitress_connections_accepted_total{worker=\"1\"} 6"))
        XCTAssertTrue(lines(second, "waitress_connections_open{").contains("waitress_connections_open{worker=\"1\"} 0"))
    }

    func testEngineErrorsAndThreadsAndProcessFigures() {
        let metrics = ServerMetrics()
        metrics.begin(threads: 4, connectionLimit: 100)
        metrics.countEngineError(status: 431)
        metrics.countEngineError(status: 431)
        metrics.countEngineError(status: 299)
        metrics.pool(busy: 3, waiting: 7)
        XCTAssertEqual(
            lines(metrics, "waitress_engine_errors_total{"),
            [
                "waitress_engine_errors_total{worker=\"0\",status=\"431\"} 2",
                "waitress_engine_errors_total{worker=\"0\",status=\"other\"} 1",
            ])
        XCTAssertEqual(
            lines(metrics, "waitress_threads{"),
            ["waitress_threads{worker=\"0\",state=\"busy\"} 3", "waitress_threads{worker=\"0\",state=\"idle\"} 1"])
        XCTAssertEqual(lines(metrics, "waitress_requests_waiting{"), ["waitress_requests_waiting{worker=\"0\"} 7"])
        let rss = lines(metrics, "process_resident_memory_bytes{").first.flatMap { Double($0.split(separator: " ")[1]) }
        XCTAssertGreaterThan(rss ?? 0, 1_000_000)
        XCTAssertEqual(lines(metrics, "process_open_fds{").count, 1)
        metrics.end()
        XCTAssertEqual(lines(metrics, "waitress_requests_waiting{"), ["waitress_requests_waiting{worker=\"0\"} 0"])
    }
}
