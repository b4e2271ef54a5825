// swift-tools-version:6.0
// Faxgate: fax and voicemail <-> e-mail gateway. See ARCHITECTURE.md for how the targets fit together.
import PackageDescription

let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Faxgate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "faxgate", targets: ["faxgate"]),
        .executable(name: "capisim", targets: ["capisim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // MARK: C libraries, one thin system-library target each (Debian -dev packages).
        .systemLibrary(name: "CCapi20", providers: [.apt(["libcapi20-dev"])]),
        .systemLibrary(name: "CTIFF", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-gnutls-dev"])]),
        .systemLibrary(name: "CEtpan", providers: [.apt(["libetpan-dev"])]),
        .systemLibrary(name: "CArchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CLame", providers: [.apt(["libmp3lame-dev"])]),
        .systemLibrary(name: "CQREncode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CSpandsp", pkgConfig: "spandsp", providers: [.apt(["libspandsp-dev"])]),

        // MARK: Libraries
        // CAPI 2.0 messages as Swift values; no I/O. Shared by the transport and the simulator.
        .target(name: "CapiProtocol", swiftSettings: swiftSettings),
        // The one owner of libcapi20: a dedicated thread, messages in and out.
        .target(name: "Capi20", dependencies: ["CCapi20", "CapiProtocol"], swiftSettings: swiftSettings),
        // SFF/MH codec, fax pages, PDF and TIFF writers.
        .target(name: "FaxDocument", dependencies: ["CTIFF"], swiftSettings: swiftSettings),
        // MIME messages and SMTP submission through libcurl.
        .target(name: "MailOut", dependencies: ["CCurl"], swiftSettings: swiftSettings),
        // IMAP (with our own certificate verification) and bounded MIME parsing through libetpan.
        .target(
            name: "MailIn",
            dependencies: [
                "CEtpan",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // Documents to fax pages: Ghostscript (sandboxed subprocess), libtiff, images, text; cover page, send report.
        .target(name: "FaxRender", dependencies: ["FaxDocument", "CTIFF"], swiftSettings: swiftSettings),
        // Voicemail audio: G.711 A-law on the line, WAV, silence detection, beep, greeting conversion (sox), MP3 (libmp3lame).
        .target(name: "VoiceAudio", dependencies: ["CLame"], resources: [.copy("Greetings")], swiftSettings: swiftSettings),
        // The software fax modem (T.30 over 8 kHz audio, spandsp): transport-agnostic, frames of samples in and out.
        .target(name: "SoftFax", dependencies: ["CSpandsp", "FaxDocument", "CTIFF", "VoiceAudio"], swiftSettings: swiftSettings),
        // Model, configuration, plugin seams and the reception pipeline.
        .target(
            name: "FaxgateCore",
            dependencies: [
                "FaxDocument", "FaxRender", "MailOut", "VoiceAudio",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // rcapi (CAPI over TCP) controller simulator for tests and the demo.
        .target(name: "CapiSimulator", dependencies: ["CapiProtocol", "SoftFax", "VoiceAudio", "FaxDocument"], swiftSettings: swiftSettings),

        // MARK: Plugins
        .target(
            name: "CAPITransport",
            dependencies: ["FaxgateCore", "Capi20", "CapiProtocol", "VoiceAudio", "SoftFax", "FaxDocument", .product(name: "Logging", package: "swift-log")],
            path: "Plugins/CAPITransport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SQLiteStorage",
            dependencies: ["FaxgateCore", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Plugins/SQLiteStorage",
            swiftSettings: swiftSettings
        ),
        // The same Storage over PostgreSQL (postgres-nio): several gateway nodes on one queue; documents in the database.
        .target(
            name: "PostgresStorage",
            dependencies: [
                "FaxgateCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Plugins/PostgresStorage",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "IMAPIntake",
            dependencies: [
                "FaxgateCore", "MailIn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Plugins/IMAPIntake",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BasicRedaction",
            dependencies: ["FaxgateCore"],
            path: "Plugins/BasicRedaction",
            swiftSettings: swiftSettings
        ),
        // Export before delete (retention) into an archive directory.
        .target(name: "ArchiveExport", dependencies: ["FaxgateCore"], path: "Plugins/ArchiveExport", swiftSettings: swiftSettings),
        // Support snapshots: redacted, AES-256 encrypted ZIP through libarchive.
        .target(
            name: "SupportSnapshot",
            dependencies: ["FaxgateCore", "CArchive", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),

        // MARK: Web admin and user portal (Hummingbird 2): pages, /metrics, /health.
        .target(
            name: "FaxgateWeb",
            dependencies: [
                "FaxgateCore", "FaxDocument", "FaxRender", "VoiceAudio", "CQREncode",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Templates"), .copy("Static")],
            swiftSettings: swiftSettings
        ),

        // MARK: Executables
        .target(
            name: "FaxgateApp",
            dependencies: [
                "FaxgateCore", "CAPITransport", "SQLiteStorage", "PostgresStorage", "BasicRedaction", "SupportSnapshot", "ArchiveExport", "IMAPIntake", "FaxDocument", "FaxRender",
                "MailOut", "MailIn", "FaxgateWeb", "SoftFax",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "faxgate",
            dependencies: ["FaxgateApp", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "capisim",
            dependencies: ["CapiSimulator", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["FaxDocument"], path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "FaxDocumentTests", dependencies: ["FaxDocument", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SoftFaxTests", dependencies: ["SoftFax", "FaxDocument", "VoiceAudio", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "MailOutTests", dependencies: ["MailOut", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "MailInTests", dependencies: ["MailIn", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "FaxRenderTests", dependencies: ["FaxRender", "FaxDocument", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CapiTests",
            dependencies: ["CapiProtocol", "Capi20", "CapiSimulator", "CAPITransport", "FaxgateCore", "SoftFax", "FaxDocument", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VoiceTests",
            dependencies: ["VoiceAudio", "CapiProtocol", "CAPITransport", "FaxgateCore", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FaxgateCoreTests",
            dependencies: ["FaxgateCore", "SQLiteStorage", "PostgresStorage", "BasicRedaction", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PrivacyTests",
            dependencies: ["FaxgateCore", "SQLiteStorage", "PostgresStorage", "BasicRedaction", "SupportSnapshot", "ArchiveExport", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebTests",
            dependencies: [
                "FaxgateWeb", "FaxgateCore", "SQLiteStorage", "PostgresStorage", "TestSupport",
                // The privacy pages' tests drive the app's operations (the CLI's functions) and compare with the CLI binary.
                "FaxgateApp", "faxgate",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdOTP", package: "hummingbird-auth"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["faxgate", "FaxgateCore", "FaxDocument", "VoiceAudio", "CapiSimulator", "CapiProtocol", "SQLiteStorage", "PostgresStorage", "SoftFax", "TestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
