// swift-tools-version:5.10
//
// The Swift core of the `waitress` package. Layers (docs/architecture.md §1), dependencies
// pointing downward only:
//
//   WaitressNative  PyInit__native: the flat native API the Python package calls
//   WaitressPython  the CPython bridge: worker pool, environ, start_response, app_iter
//   WaitressTLS     swift-nio-ssl (BoringSSL): the TLS seam WaitressServer's listeners take
//   WaitressServer  SwiftNIO (NIOPosix): listeners, connections, limits, output
//   WaitressHTTP    pure Swift, no NIO, no Python: parser, receivers, framing
//   CPython         C shim: Python.h plus wrappers for macros Swift can't import
//
// The Python include directory comes from WAITRESS_PYTHON_INCLUDE (the build hook
// in setup.py sets it from sysconfig); without it, `python3`'s is used.
import PackageDescription

#if canImport(Foundation)
import Foundation
#endif

func pythonIncludeDirectory() -> String {
    if let dir = Context.environment["WAITRESS_PYTHON_INCLUDE"], !dir.isEmpty {
        return dir
    }
    #if canImport(Foundation)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import sysconfig; print(sysconfig.get_path('include'))"]
    let pipe = Pipe()
    process.standardOutput = pipe
    if (try? process.run()) != nil {
        process.waitUntilExit()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        if let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
            !text.isEmpty
        {
            return text
        }
    }
    #endif
    return "/usr/include/python3"
}

let pythonInclude = pythonIncludeDirectory()
// Exclusivity checks cost ~4k instructions per request on the hot path
// (measured with callgrind); the core is single-owner by design, so release
// builds run without them.
let fastSwiftFlags: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]
let shimSwiftFlags: [SwiftSetting] = fastSwiftFlags + [
    .unsafeFlags(["-Xcc", "-I\(pythonInclude)", "-Xcc", "-D_GNU_SOURCE"])
]

let package = Package(
    name: "waitress-native",
    products: [
        .library(name: "WaitressNative", type: .dynamic, targets: ["WaitressNative"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
    ],
    targets: [
        .target(
            name: "CPython",
            cSettings: [
                .define("_GNU_SOURCE"),
                .unsafeFlags(["-I\(pythonInclude)"]),
            ]
        ),
        .target(name: "WaitressHTTP", swiftSettings: fastSwiftFlags),
        .target(
            name: "WaitressServer",
            dependencies: [
                "WaitressHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: fastSwiftFlags
        ),
        // Two BoringSSL calls swift-nio-ssl does not offer (a cipher string checked before
        // use, a suite's name); BoringSSL itself comes with NIOSSL.
        .target(name: "CWaitressBoringSSL"),
        .target(
            name: "WaitressTLS",
            dependencies: [
                "WaitressServer", "CWaitressBoringSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: fastSwiftFlags
        ),
        .target(
            name: "WaitressPython",
            dependencies: [
                "CPython", "WaitressHTTP", "WaitressServer", "WaitressTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: shimSwiftFlags
        ),
        .target(
            name: "WaitressNative",
            dependencies: ["CPython", "WaitressPython"],
            swiftSettings: shimSwiftFlags
        ),
        .testTarget(
            name: "WaitressHTTPTests",
            dependencies: ["WaitressHTTP"]
        ),
        .testTarget(
            name: "WaitressServerTests",
            dependencies: [
                "WaitressServer", "WaitressHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WaitressTLSTests",
            dependencies: [
                "WaitressTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ]
)
