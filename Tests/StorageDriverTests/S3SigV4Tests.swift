import Foundation
@testable import S3
import Testing

/// The signatures the S3 client computes itself (for UploadPartCopy with a range, which
/// libcurl 7.88 signs out of order) match AWS's published example; radosgw checks the real ones
/// in S3DriverTests.
@Suite struct S3SigV4Tests {
    /// AWS's "Example: GET Object" (Signature Version 4, authorization header): the same
    /// canonical request, string to sign and signature.
    @Test func awsPublishedGetObjectExample() {
        let headers = S3SigV4.signatureHeaders(
            method: "GET", url: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: [
                (name: "Range", value: "bytes=0-9"),
                (name: "x-amz-content-sha256", value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ],
            region: "us-east-1", credentials: S3Credentials(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            date: Date(timeIntervalSince1970: 1_369_353_600))  // 2013-05-24T00:00:00Z
        #expect(headers.first { $0.name == "x-amz-date" }?.value == "20130524T000000Z")
        #expect(
            headers.first { $0.name == "Authorization" }?.value
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    /// Only header sets libcurl 7.88 would sort wrongly are signed here.
    @Test func onlyNamesThatArePrefixesOfOthersAreSignedHere() {
        let copy = [(name: "x-amz-copy-source", value: "/b/k"), (name: "x-amz-content-sha256", value: "x")]
        #expect(!S3SigV4.curlMissorts(copy))
        #expect(S3SigV4.curlMissorts(copy + [(name: "x-amz-copy-source-range", value: "bytes=0-1")]))
        #expect(!S3SigV4.curlMissorts([(name: "Range", value: "bytes=0-1"), (name: "If-Match", value: "\"e\"")]))
    }
}
