/// The manifest media types registry 2.8.2 knows (docs/storage-format.md, Manifests and tags).
public enum ManifestMediaType {
    /// Docker image manifest, schema 1, signed: what 2.8.2 answers for any `schemaVersion` 1.
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let dockerSchema2 = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
}
