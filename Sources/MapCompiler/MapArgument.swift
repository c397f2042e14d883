/// A command-line operand `[type:]name`, split at its first colon.
public struct MapArgument: Sendable, Equatable, CustomStringConvertible {
    /// The type as typed (`hash`, `btree`, …), or `nil` when the operand has no colon.
    public let explicitType: String?
    /// The name: the source path, and with `.db` appended the table path.
    public let name: String

    /// Splits an operand as typed (`hash:virtual`, `virtual`) at its first colon.
    public init(_ operand: String) {
        if let colon = operand.firstIndex(of: ":") {
            explicitType = String(operand[..<colon])
            name = String(operand[operand.index(after: colon)...])
        } else {
            explicitType = nil
            name = operand
        }
    }

    /// A map of `type` (`nil`: the default type) named `name`.
    public init(type: String?, name: String) {
        self.explicitType = type
        self.name = name
    }

    /// The type, with `defaultType` (main.cf `default_database_type`) for a bare name.
    public func type(default defaultType: String) -> String { explicitType ?? defaultType }

    /// The table file Postfix uses for hash and btree maps.
    public var tablePath: String { name + ".db" }

    /// The table file of a `table` map: `NAME.db`, `NAME.lmdb` or `NAME.cdb`.
    public func tablePath(for table: TableType) -> String { name + table.fileSuffix }

    /// The operand as typed: `TYPE:NAME`, or `NAME`.
    public var description: String {
        explicitType.map { "\($0):\(name)" } ?? name
    }
}

/// What swiftpostmap knows about a map type it may be asked for.
public enum MapTypeSupport: Equatable, Sendable {
    /// An indexed table type swiftpostmap reads and writes (hash, btree, lmdb, cdb).
    case indexed(TableType)
    /// A type Postfix knows but cannot create in bulk (regexp, pcre, cidr, …).
    case noBulkCreate
    /// A type Postfix (on Debian) provides through a plug-in package swiftpostmap does not
    /// implement (mysql, ldap, …), or a type nobody knows.
    case unsupported

    /// What swiftpostmap knows about the map type named `type` (`hash`, `regexp`, …).
    public init(type: String) {
        switch type {
        case "hash": self = .indexed(.hash)
        case "btree": self = .indexed(.btree)
        case "lmdb": self = .indexed(.lmdb)
        case "cdb": self = .indexed(.cdb)
        case "regexp", "pcre", "cidr", "static", "inline", "pipemap", "union", "texthash",
            "randmap", "environ", "internal", "unix", "nis", "tcp", "socketmap", "unionmap",
            "fail", "pgsql":
            self = .noBulkCreate
        default: self = .unsupported
        }
    }
}
