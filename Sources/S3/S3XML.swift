import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An S3 XML answer as a tree (ListBucketResult, Error, InitiateMultipartUploadResult, …),
/// parsed by Foundation's XMLParser: answers are small (a listing page is at most 1,000 keys).
struct XMLElement: Sendable {
    var name: String
    var text: String = ""
    var children: [XMLElement] = []

    /// The first child named `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
    /// Every child named `name`, in document order.
    func children(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }
    /// The text of the first child named `name`.
    func text(_ name: String) -> String? { child(name)?.text }

    /// The document's root element; nil for a body that is not well-formed XML.
    static func parse(_ bytes: [UInt8]) -> XMLElement? {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true  // element names without the S3 namespace prefix
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        guard parser.parse() else { return nil }
        return builder.root
    }
}

/// Builds the tree from XMLParser's events.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [XMLElement] = []
    var root: XMLElement?

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String] = [:]
    ) {
        stack.append(XMLElement(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let element = stack.popLast() else { return }
        if stack.isEmpty {
            root = element
        } else {
            stack[stack.count - 1].children.append(element)
        }
    }
}
