import Testing

@testable import blobfs

/// The parts of the command line that need no mount: the registry's configuration and `-o`.
@Suite struct CommandLineTests {
    @Test func readsDebiansRegistryConfiguration() throws {
        let configuration = try RegistryConfiguration.parse(
            """
            version: 0.1
            log:
              fields:
                service: registry
            storage:
              cache:
                blobdescriptor: inmemory
              filesystem:
                rootdirectory: /var/lib/docker-registry
              delete:
                enabled: true
            http:
              addr: :5000
            """, source: "config.yml")
        #expect(configuration.rootDirectory == "/var/lib/docker-registry")
        #expect(configuration.cache == .inMemory(size: nil))
        #expect(configuration.redis == nil)
    }

    @Test func readsTheRedisSection() throws {
        let configuration = try RegistryConfiguration.parse(
            """
            storage:
              filesystem: {rootdirectory: /srv/registry}
              cache: {blobdescriptor: redis}
            redis:
              addr: 127.0.0.1:6390
              password: secret
              db: 3
              dialtimeout: 10ms
              readtimeout: 1m30s
            """, source: "config.yml")
        #expect(configuration.cache == .redis(size: nil))
        #expect(configuration.redis == .init(address: "127.0.0.1:6390", password: "secret", database: 3, dialTimeout: 0.01, readTimeout: 90))
    }

    @Test func refusesWhatIsNotAFilesystemStore() {
        // s3 is read since issue 14; a driver blobfs does not know, and two drivers, are still refused.
        #expect(throws: CommandFailure.self) { try RegistryConfiguration.parse("storage: {gcs: {bucket: b}}", source: "c") }
        #expect(throws: CommandFailure.self) { try RegistryConfiguration.parse("storage: {s3: {bucket: b}, filesystem: {}}", source: "c") }
        #expect(throws: CommandFailure.self) { try RegistryConfiguration.parse("not: [valid", source: "c") }
        #expect(throws: CommandFailure.self) {
            try RegistryConfiguration.parse("storage: {filesystem: {}}\nredis: {addr: x, dialtimeout: soon}", source: "c")
        }
    }

    /// F11: a value of the wrong type or out of range is an error naming the key, never a default.
    @Test(arguments: [
        ("redis: {addr: x, db: \"3\"}", "redis.db \"3\""),
        ("redis: {addr: x, db: 3.7}", "redis.db \"3.7\""),
        ("redis: {addr: x, db: notanumber}", "redis.db \"notanumber\""),
        ("redis: {addr: x, db: -1}", "redis.db \"-1\""),
        ("redis: {addr: x, db: 2147483648}", "redis.db \"2147483648\""),
        ("redis: {addr: x, db: [3]}", "redis.db must be a single value"),
        ("redis: {addr: [x]}", "redis.addr must be a single value"),
        ("redis: {addr: x, password: {a: b}}", "redis.password must be a single value"),
        ("redis: {addr: x, readtimeout: banana}", "redis.readtimeout \"banana\""),
        ("storage: {filesystem: {}, cache: {blobdescriptor: inmemory, blobdescriptorsize: -5}}", "storage.cache.blobdescriptorsize \"-5\""),
        ("storage: {filesystem: {}, cache: {blobdescriptor: inmemory, blobdescriptorsize: lots}}", "storage.cache.blobdescriptorsize \"lots\""),
        ("storage: {filesystem: {}, cache: {blobdescriptor: [redis]}}", "storage.cache.blobdescriptor must be a single value"),
        ("storage: {filesystem: {rootdirectory: {a: b}}}", "storage.filesystem.rootdirectory must be a single value"),
    ]) func refusesAWrongValueNamingTheKey(yaml: String, mentions: String) {
        let text = yaml.hasPrefix("storage:") ? yaml : "storage: {filesystem: {rootdirectory: /srv}}\n" + yaml
        do {
            let parsed = try RegistryConfiguration.parse(text, source: "c.yml")
            Issue.record("\(text) was accepted: \(parsed)")
        } catch {
            #expect(error.message.hasPrefix("c.yml: ") && error.message.contains(mentions), "\(text): \(error.message)")
            #expect(!error.message.contains("\n"))
        }
    }

    @Test func acceptsEveryDatabaseRedisCanSelectAndNotesADefaultRoot() throws {
        let top = try RegistryConfiguration.parse(
            "storage: {filesystem: {rootdirectory: /srv}, cache: {blobdescriptor: redis, blobdescriptorsize: 0}}\n"
                + "redis: {addr: x, db: 2147483647}", source: "c")
        #expect(top.redis?.database == 2_147_483_647)
        #expect(top.cache == .redis(size: nil), "0 is the registry's default size")
        #expect(!top.rootDirectoryIsDefault)
        let defaulted = try RegistryConfiguration.parse("storage: {filesystem: {}}", source: "c")
        #expect(defaulted.rootDirectory == "/var/lib/registry" && defaulted.rootDirectoryIsDefault)
    }

    @Test func sortsMountOptions() throws {
        let list = try MountOptionList(parsing: ["ro,allow_other,noauto,cache_entries=5", "no_verify,x-systemd.automount"])
        #expect(!list.readWrite)
        #expect(list.fuseOptions == ["allow_other"])
        #expect(list.cacheEntries == 5)
        #expect(list.verifyReads == false)
        #expect(list.ignored.contains("noauto"))
        #expect(throws: CommandFailure.self) { try MountOptionList(parsing: ["allow_othre"]) }
        #expect(throws: CommandFailure.self) { try MountOptionList(parsing: ["cache_entries=-1"]) }
    }
}
