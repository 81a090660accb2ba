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
        #expect(throws: CommandFailure.self) { try RegistryConfiguration.parse("storage: {s3: {bucket: b}}", source: "c") }
        #expect(throws: CommandFailure.self) { try RegistryConfiguration.parse("not: [valid", source: "c") }
        #expect(throws: CommandFailure.self) {
            try RegistryConfiguration.parse("storage: {filesystem: {}}\nredis: {addr: x, dialtimeout: soon}", source: "c")
        }
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
