// `blobfs <subcommand> …`, or the mount.fuse form `blobfs <storage-root> <mountpoint> -o …` that
// mount(8) runs for `mount -t fuse.blobfs` and /etc/fstab.
let arguments = Array(CommandLine.arguments.dropFirst())
if MountHelper.isInvocation(arguments, subcommands: Blobfs.subcommandNames) {
    MountHelper.main(arguments)
} else {
    Blobfs.runAsRoot(arguments)
}
