/// setxattr and removexattr on a read-write mount (images-spec §5.2). The `user.blobfs.*`
/// attributes are computed from the store (a blob's or manifest's digest, size and media type),
/// so what a restore sets is accepted and ignored: `cp -a` sets them on the files it writes and
/// `rsync -X` on the files it renames into place, and both fail (or exit 23) on a refusal. Every
/// other name is "not supported" (ENOTSUP), which `cp -a` ignores for the ACL it sets on
/// directories (`system.posix_acl_access`), and which says plainly to `setfattr -n user.other`
/// that nothing else can be stored. The OCI view is read-only in every mount.
extension BlobFileSystem {
    /// setxattr(2): `user.blobfs.*` accepted without effect; anything else ENOTSUP.
    func setxattr(ino: UInt64, name: String) throws(FileSystemError) {
        try checkAttributeWrite(ino: ino, name: name)
    }

    /// removexattr(2) of `user.blobfs.*` is accepted without effect too: `rsync -X` removes the
    /// attributes a destination file has and its source lacks (a backup made without `-X`, or
    /// onto a filesystem without user attributes), and a refusal would fail a restore that lost
    /// nothing, since the values are computed and come back at the next read. Anything else
    /// ENOTSUP, as for setxattr: no other attribute can exist here.
    func removexattr(ino: UInt64, name: String) throws(FileSystemError) {
        try checkAttributeWrite(ino: ino, name: name)
    }

    /// The one rule for both: a read-write mount, a known node outside the OCI view, a name in
    /// `user.blobfs.`.
    private func checkAttributeWrite(ino: UInt64, name: String) throws(FileSystemError) {
        guard options.readWrite else { throw .readOnlyMount }
        guard let entry = inodes[ino] else { throw .noEntry }
        switch entry.node {
        case .ociDirectory, .ociFile: throw .readOnlyMount
        case .root, .directory, .blob, .upload, .manifest, .tag, .pendingLink: break
        }
        guard name.hasPrefix(Self.computedAttributePrefix) else { throw .attributeNotSupported }
    }

    /// The namespace of the attributes blobfs computes (NodeOperations' `extendedAttribute`).
    static let computedAttributePrefix = "user.blobfs."
}
