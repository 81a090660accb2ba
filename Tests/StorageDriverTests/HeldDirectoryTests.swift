import Foundation
import StorageDriver
import Testing
import TestSupport

/// Reads below a directory the filesystem driver holds open (`getContent(_:below:limit:)`,
/// `stat(_:below:)`, what every cold lookup does): the same answers as reads by path, and never
/// the answer of a directory that is no longer at the path once it has been checked again.
@Suite struct HeldDirectoryTests {
    /// A store with `repositories/<name>/_layers/sha256/<hex>/link` for each link.
    private struct Store {
        let directory: TemporaryDirectory
        var root: String { directory.path }

        init() throws { directory = try TemporaryDirectory(prefix: "held-dirs") }

        func layers(_ repository: String) -> String { "\(root)/repositories/\(repository)/_layers/sha256" }
        static func layers(_ repository: String) -> DriverPath { try! DriverPath("/repositories/\(repository)/_layers/sha256") }

        func link(_ repository: String, _ hex: String, holding content: String) throws {
            try FileManager.default.createDirectory(atPath: "\(layers(repository))/\(hex)", withIntermediateDirectories: true)
            try content.write(toFile: "\(layers(repository))/\(hex)/link", atomically: false, encoding: .utf8)
        }
    }

    private static let one = String(repeating: "1", count: 64)
    private static let two = String(repeating: "2", count: 64)

    private func read(_ driver: FilesystemDriver, _ repository: String, _ hex: String) throws -> String {
        String(decoding: try driver.getContent("\(hex)/link", below: Store.layers(repository), limit: 4096), as: UTF8.self)
    }

    @Test func answersAsReadsByPathDo() throws {
        let store = try Store()
        defer { store.directory.remove() }
        try store.link("app", Self.one, holding: "sha256:\(Self.one)")
        try FileManager.default.createDirectory(atPath: "\(store.layers("app"))/\(Self.two)/link", withIntermediateDirectories: true)
        try String(repeating: "x", count: 5000).write(toFile: "\(store.layers("app"))/big", atomically: false, encoding: .utf8)
        let outside = try TemporaryDirectory(prefix: "held-outside")
        defer { outside.remove() }
        try "secret".write(toFile: outside.path + "/link", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(store.layers("app"))/planted", withDestinationPath: outside.path)
        let driver = try FilesystemDriver(root: store.root)
        let directory = Store.layers("app")

        for (relative, limit) in [("\(Self.one)/link", 4096), ("\(Self.one)/link", 10), ("big", 4096), ("big", 10_000)] {
            let byPath = Result { () throws(StorageDriverError) in try driver.getContent(try directory.appending(path: relative), limit: limit) }
            let below = Result { () throws(StorageDriverError) in try driver.getContent(relative, below: directory, limit: limit) }
            #expect(below == byPath, "\(relative), limit \(limit)")
        }
        #expect(try read(driver, "app", Self.one) == "sha256:\(Self.one)")
        #expect(throws: StorageDriverError.pathNotFound("\(directory)/\(Self.one)/none")) {
            try driver.getContent("\(Self.one)/none", below: directory, limit: 4096)
        }
        #expect(throws: StorageDriverError.isDirectory("\(directory)/\(Self.two)/link")) { try self.read(driver, "app", Self.two) }
        #expect(throws: StorageDriverError.symlinkRefused("\(directory)/planted/link")) {
            try driver.getContent("planted/link", below: directory, limit: 4096)
        }
        #expect(throws: StorageDriverError.symlinkRefused("\(directory)/planted/link")) { try driver.stat("planted/link", below: directory) }
        #expect(try driver.stat("\(Self.one)/link", below: directory) == driver.stat(try directory.appending(path: "\(Self.one)/link")))
        #expect(throws: StorageDriverError.pathNotFound("/repositories/none/_layers/sha256/\(Self.one)/link")) {
            try self.read(driver, "none", Self.one)
        }
    }

    @Test func aRepositoryRemovedAndMadeAgainAnswersAtOnce() throws {
        let store = try Store()
        defer { store.directory.remove() }
        try store.link("app", Self.one, holding: "old")
        // A long recheck interval: only the removal itself can make the driver look again.
        let driver = try FilesystemDriver(root: store.root, heldDirectoryRecheck: .seconds(3600))
        #expect(try read(driver, "app", Self.one) == "old")
        try FileManager.default.removeItem(atPath: "\(store.root)/repositories/app")
        try store.link("app", Self.two, holding: "new")
        #expect(try read(driver, "app", Self.two) == "new")
        #expect(throws: StorageDriverError.pathNotFound("/repositories/app/_layers/sha256/\(Self.one)/link")) {
            try self.read(driver, "app", Self.one)
        }
        try FileManager.default.removeItem(atPath: "\(store.root)/repositories/app")
        #expect(throws: StorageDriverError.pathNotFound("/repositories/app/_layers/sha256/\(Self.two)/link")) {
            try self.read(driver, "app", Self.two)
        }
    }

    @Test func aRepositoryRenamedAwayIsNotReadOnceChecked() throws {
        let store = try Store()
        defer { store.directory.remove() }
        try store.link("app", Self.one, holding: "app's")
        try store.link("web", Self.one, holding: "web's")
        // Checked at every use: what the default interval does a second after the last check.
        let driver = try FilesystemDriver(root: store.root, heldDirectoryRecheck: .zero)
        #expect(try read(driver, "app", Self.one) == "app's")
        #expect(try read(driver, "web", Self.one) == "web's")
        // app's directory now holds web's links, and the old app is elsewhere with its own.
        let repositories = "\(store.root)/repositories"
        try FileManager.default.moveItem(atPath: "\(repositories)/app", toPath: "\(repositories)/app.old")
        try FileManager.default.moveItem(atPath: "\(repositories)/web", toPath: "\(repositories)/app")
        #expect(try read(driver, "app", Self.one) == "web's")
        #expect(throws: StorageDriverError.pathNotFound("/repositories/web/_layers/sha256/\(Self.one)/link")) {
            try self.read(driver, "web", Self.one)
        }
    }

    @Test func aRenameIsSeenWithinTheRecheckInterval() throws {
        let store = try Store()
        defer { store.directory.remove() }
        try store.link("app", Self.one, holding: "app's")
        try store.link("web", Self.one, holding: "web's")
        let driver = try FilesystemDriver(root: store.root, heldDirectoryRecheck: .milliseconds(100))
        #expect(try read(driver, "app", Self.one) == "app's")
        let repositories = "\(store.root)/repositories"
        try FileManager.default.moveItem(atPath: "\(repositories)/app", toPath: "\(repositories)/app.old")
        try FileManager.default.moveItem(atPath: "\(repositories)/web", toPath: "\(repositories)/app")
        // Polled: the held directory answers until it is checked again, and then never again.
        let started = ContinuousClock.now
        var answer = try read(driver, "app", Self.one)
        while answer == "app's", ContinuousClock.now - started < .seconds(10) { answer = try read(driver, "app", Self.one) }
        #expect(answer == "web's", "still the renamed directory's answer after \(ContinuousClock.now - started)")
    }

    @Test func aDirectoryReplacedByASymbolicLinkIsRefused() throws {
        let store = try Store()
        defer { store.directory.remove() }
        try store.link("app", Self.one, holding: "app's")
        let driver = try FilesystemDriver(root: store.root, heldDirectoryRecheck: .zero)
        #expect(try read(driver, "app", Self.one) == "app's")
        let app = "\(store.root)/repositories/app"
        try FileManager.default.moveItem(atPath: "\(app)/_layers", toPath: "\(store.root)/moved")
        try FileManager.default.createSymbolicLink(atPath: "\(app)/_layers", withDestinationPath: "\(store.root)/moved")
        #expect(throws: StorageDriverError.symlinkRefused("/repositories/app/_layers/sha256/\(Self.one)/link")) { try self.read(driver, "app", Self.one) }
        #expect(throws: StorageDriverError.symlinkRefused("/repositories/app/_layers/sha256/\(Self.one)/link")) {
            try driver.stat("\(Self.one)/link", below: Store.layers("app"))
        }
        #expect(driver.heldDirectoryCount == 0)
    }

    @Test func heldDescriptorsStayBoundedOverManyRepositories() throws {
        let store = try Store()
        defer { store.directory.remove() }
        let count = 2_000
        for index in 0..<count { try store.link("r\(index)", Self.one, holding: "r\(index)") }
        let driver = try FilesystemDriver(root: store.root, heldDirectoryLimit: 64)
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        var wrong = 0
        for index in 0..<count where try read(driver, "r\(index)", Self.one) != "r\(index)" { wrong += 1 }
        let after = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        #expect(wrong == 0)
        #expect(driver.heldDirectoryCount == 64)
        // Other tests of this process open files meanwhile; 2,000 unbounded descriptors would show.
        #expect(after - before < 1000, "\(after - before) more descriptors after reading in \(count) repositories")
    }
}
