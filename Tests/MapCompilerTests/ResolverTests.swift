import Foundation
import Testing

@testable import MapCompiler

/// Settings of a small installation: `host.example` is the local domain (and myorigin),
/// `recipient_delimiter = +`, `vm.example` a virtual mailbox domain, `relay.example` a relay
/// domain, `virtual_mailbox_base = /var/vmail`.
private func testSettings() -> ResolverSettings {
    var settings = ResolverSettings()
    settings.recipientDelimiters = ["+"]
    settings.myorigin = "host.example"
    settings.mydomain = "example"
    settings.mydestination = DomainList(names: ["host.example", "localhost"])
    settings.virtualMailboxDomains = DomainList(names: ["vm.example"])
    settings.relayDomains = DomainList(names: ["relay.example"], kind: .hosts(parentMatchesSubdomains: true))
    settings.virtualMailboxBase = "/var/vmail"
    return settings
}

/// A resolver over literal maps (keys folded as postmap folds them).
private func resolver(
    virtual: [(String, String)] = [], vmailbox: [(String, String)] = [], aliases: [(String, String)] = [],
    configure: (inout ResolverSettings) -> Void = { _ in }
) -> AddressResolver {
    var settings = testSettings()
    configure(&settings)
    return AddressResolver(
        settings: settings, virtualMaps: virtual.isEmpty ? [] : [LookupMap(name: "virtual", entries: virtual)],
        mailboxMaps: vmailbox.isEmpty ? [] : [LookupMap(name: "vmailbox", entries: vmailbox)],
        aliasMaps: aliases.isEmpty ? [] : [LookupMap(name: "aliases", entries: aliases)])
}

/// Resolves an address typed as on the command line.
private func resolve(_ address: String, with resolver: AddressResolver) throws -> Resolution {
    let parsed = try #require(parseInputAddress(address))
    return resolver.resolve(parsed)
}

private func keys(_ address: String, _ resolver: AddressResolver, internalToo: Bool = false) -> [String] {
    resolver.searchKeys(address, internalToo: internalToo).map(\.key)
}

@Suite("Address resolver: search sequence (§10.4)")
struct ResolverSearchOrderTests {
    @Test func nonLocalDomainSkipsTheLocalpartSteps() {
        #expect(
            keys("joe+foo@example.com", resolver())
                == ["joe+foo@example.com", "joe@example.com", "@example.com"])
    }

    @Test func localDomainAddsTheLocalpartSteps() {
        #expect(
            keys("joe+foo@host.example", resolver())
                == ["joe+foo@host.example", "joe@host.example", "joe+foo", "joe", "@host.example"])
        // Case-insensitive, and one trailing dot of the domain is ignored.
        #expect(keys("joe@LOCALHOST.", resolver()) == ["joe@LOCALHOST.", "joe", "@LOCALHOST."])
    }

    @Test func myoriginIsLocalForLookupsEvenOutsideMydestination() {
        let r = resolver { $0.mydestination = DomainList(names: ["localhost"]) }
        #expect(keys("joe@host.example", r) == ["joe@host.example", "joe", "@host.example"])
    }

    @Test func withoutRecipientDelimiterThereIsNoExtension() {
        let r = resolver { $0.recipientDelimiters = [] }
        #expect(keys("joe+foo@example.com", r) == ["joe+foo@example.com", "@example.com"])
    }

    @Test func theFirstDelimiterOfTheSetSplits() {
        let r = resolver { $0.recipientDelimiters = ["+", "-"] }
        #expect(r.splitExtension("joe-foo+bar")?.user == "joe")
        #expect(r.splitExtension("joe-foo+bar")?.extension == "-foo+bar")
        // A delimiter as the first character leaves nothing to split off.
        #expect(r.splitExtension("+foo") == nil)
        #expect(r.splitExtension("joe") == nil)
    }

    @Test func specialLocalpartsAreNeverSplit() {
        let r = resolver { $0.recipientDelimiters = ["+", "-"] }
        for special in ["postmaster", "MAILER-DAEMON", "double-bounce", "owner-list", "list-request", "Owner-X"] {
            #expect(r.splitExtension(special) == nil, "\(special)")
        }
        #expect(keys("list-request@example.com", r) == ["list-request@example.com", "@example.com"])
        // Only the exact names are special: postmaster+x has an extension.
        #expect(resolver().splitExtension("postmaster+x")?.user == "postmaster")
    }

    @Test func ownerAndRequestAreSpecialOnlyWithDashAndOwnerRequestSpecial() {
        let plus = resolver()
        #expect(plus.splitExtension("owner-list+x")?.user == "owner-list")
        let noSpecial = resolver {
            $0.recipientDelimiters = ["-"]
            $0.ownerRequestSpecial = false
        }
        #expect(noSpecial.splitExtension("owner-list")?.user == "owner")
        #expect(noSpecial.splitExtension("list-request")?.user == "list")
    }

    @Test func mapsAreTriedTableMinorForEachKey() throws {
        // The full address in the second map beats user@domain in the first map.
        let settings = testSettings()
        let first = LookupMap(name: "first", entries: [("joe@example.com", "from-first@x.example")])
        let second = LookupMap(name: "second", entries: [("joe+foo@example.com", "from-second@x.example")])
        let r = AddressResolver(settings: settings, virtualMaps: [first, second])
        let resolution = try resolve("joe+foo@example.com", with: r)
        #expect(resolution.recipients.map(\.address) == ["from-second@x.example"])
        #expect(resolution.steps.first?.map == "second")
        // For the same key the first map wins.
        let both = AddressResolver(
            settings: settings,
            virtualMaps: [
                LookupMap(name: "a", entries: [("joe@example.com", "a@x.example")]),
                LookupMap(name: "b", entries: [("joe@example.com", "b@x.example")]),
            ])
        #expect(try resolve("joe@example.com", with: both).recipients.map(\.address) == ["a@x.example"])
    }

    @Test func specificEntriesBeatTheCatchAll() throws {
        let r = resolver(virtual: [("@example.com", "catchall@x.example"), ("info@example.com", "info@x.example")])
        #expect(try resolve("info@example.com", with: r).recipients.map(\.address) == ["info@x.example"])
        #expect(try resolve("other@example.com", with: r).recipients.map(\.address) == ["catchall@x.example"])
        // A catch-all match leaves no unmatched extension.
        #expect(try resolve("other+tag@example.com", with: r).recipients.map(\.address) == ["catchall@x.example"])
    }

    @Test func lookupsAreCaseInsensitive() throws {
        let r = resolver(virtual: [("Info@Example.COM", "joe@x.example")])
        #expect(try resolve("INFO@example.com", with: r).recipients.map(\.address) == ["joe@x.example"])
    }

    @Test func mailboxLookupsTryTheInternalFormAfterTheExternalOne() {
        #expect(
            keys("foo bar@example.com", resolver(), internalToo: true)
                == ["\"foo bar\"@example.com", "foo bar@example.com", "@example.com"])
    }
}

@Suite("Address resolver: quoting (§10.3)")
struct ResolverQuotingTests {
    @Test func dotStringsStayUnquoted() {
        #expect(isDotString("joe.user"))
        #expect(isDotString("jöe"))
        #expect(!isDotString(""))
        #expect(!isDotString("a."))
        #expect(!isDotString(".a"))
        #expect(!isDotString("a..b"))
        #expect(!isDotString("foo bar"))
        #expect(!isDotString("a@b"))
    }

    @Test func otherLocalpartsAreQuotedWithEscapes() {
        #expect(quotedLocalpart("foo bar") == "\"foo bar\"")
        #expect(quotedLocalpart("a.") == "\"a.\"")
        #expect(quotedLocalpart("say \"hi\"") == "\"say \\\"hi\\\"\"")
        #expect(quotedLocalpart("back\\slash") == "\"back\\\\slash\"")
        #expect(externalAddress("a@b@example.com") == "\"a@b\"@example.com")
    }

    @Test func quotedKeysMatchTheExternalForm() throws {
        let r = resolver(virtual: [("\"foo bar\"@example.com", "joe@x.example")])
        let resolution = try resolve("\"foo bar\"@example.com", with: r)
        #expect(resolution.recipients.map(\.address) == ["joe@x.example"])
        #expect(resolution.steps.first?.query == "\"foo bar\"@example.com")
        // The same address typed without quotes is the same internal address.
        #expect(parseInputAddress("foo bar@example.com") == "foo bar@example.com")
        // An unquoted key of that form never matches (virtual aliasing queries only the external form).
        let unquoted = resolver(virtual: [("foo bar@example.com", "joe@x.example")])
        #expect(
            try resolve("\"foo bar\"@example.com", with: unquoted).recipients.map(\.address) == [
                "\"foo bar\"@example.com"
            ])
    }
}

@Suite("Address resolver: result processing (§10.5)")
struct ResolverResultTests {
    @Test func atDomainValueKeepsTheUser() throws {
        let r = resolver(virtual: [("@old.example", "@new.example")])
        #expect(try resolve("joe@old.example", with: r).recipients.map(\.address) == ["joe@new.example"])
        #expect(try resolve("joe+x@old.example", with: r).recipients.map(\.address) == ["joe+x@new.example"])
    }

    @Test func atDomainValueAfterAnExtensionLessMatchGetsTheExtensionBack() throws {
        let r = resolver(virtual: [("joe@old.example", "@new.example, @other.example")])
        let resolution = try resolve("joe+tag@old.example", with: r)
        // Only the first item gets the user; every item gets the unmatched extension.
        #expect(resolution.recipients.map(\.address) == ["joe+tag@new.example", "+tag@other.example"])
    }

    @Test func valuesAreRFC822Lists() throws {
        let r = resolver(virtual: [
            ("list@example.com", "a, \"b c\"@x.example, Dee <d@y.example> (comment), e@z.example (E)")
        ])
        let resolution = try resolve("list@example.com", with: r)
        #expect(
            resolution.recipients.map(\.address) == [
                "a@host.example", "\"b c\"@x.example", "d@y.example", "e@z.example",
            ])
        #expect(resolution.steps.first?.result == resolution.recipients.map(\.address))
    }

    @Test func bareLocalpartsGetMyoriginAndDotlessDomainsMydomainWhenAsked() throws {
        let plain = resolver(virtual: [("a@example.com", "joe, ann@box")])
        #expect(
            try resolve("a@example.com", with: plain).recipients.map(\.address) == ["joe@host.example", "ann@box"])
        let dotted = resolver(virtual: [("a@example.com", "joe, ann@box")]) { $0.appendDotMydomain = true }
        #expect(
            try resolve("a@example.com", with: dotted).recipients.map(\.address) == [
                "joe@host.example", "ann@box.example",
            ])
    }

    @Test func unmatchedExtensionsArePropagated() throws {
        let r = resolver(virtual: [("joe@example.com", "joe.user@example.net")])
        let resolution = try resolve("joe+foo@example.com", with: r)
        #expect(resolution.recipients.map(\.address) == ["joe.user+foo@example.net"])
        #expect(resolution.steps.first?.note?.contains("+foo") == true)
        let off = resolver(virtual: [("joe@example.com", "joe.user@example.net")]) { $0.propagateToVirtual = false }
        #expect(try resolve("joe+foo@example.com", with: off).recipients.map(\.address) == ["joe.user@example.net"])
        // A match on the full address leaves nothing unmatched.
        let full = resolver(virtual: [("joe+foo@example.com", "joe.user@example.net")])
        #expect(try resolve("joe+foo@example.com", with: full).recipients.map(\.address) == ["joe.user@example.net"])
    }

    @Test func bareLocalpartKeysMatchOnlyInLocalDomains() throws {
        let r = resolver(virtual: [("joe", "joe@elsewhere.example")])
        #expect(try resolve("joe@host.example", with: r).recipients.map(\.address) == ["joe@elsewhere.example"])
        #expect(try resolve("joe+x@host.example", with: r).recipients.map(\.address) == ["joe+x@elsewhere.example"])
        #expect(try resolve("joe@example.com", with: r).recipients.map(\.address) == ["joe@example.com"])
    }

    @Test func inputAddressesAreCanonicalized() throws {
        let resolution = try resolve("joe", with: resolver())
        #expect(resolution.canonical == "joe@host.example")
        #expect(resolution.steps.first?.stage == .canonical)
        #expect(try resolve("joe@example.com.", with: resolver()).canonical == "joe@example.com")
    }

    @Test func emptyValuesAndNonAddressValuesDefer() throws {
        let empty = try resolve("a@example.com", with: resolver(virtual: [("a@example.com", "")]))
        #expect(empty.status == .deferred)
        #expect(empty.reason?.contains("virtual_alias_maps map lookup problem for a@example.com") == true)
        #expect(empty.steps.last?.note?.contains("returns an empty string result") == true)
        let junk = try resolve("a@example.com", with: resolver(virtual: [("a@example.com", "(just a comment)")]))
        #expect(junk.status == .deferred)
        #expect(junk.steps.last?.note?.contains("non-address result") == true)
    }
}

@Suite("Address resolver: recursive expansion (§10.6)")
struct ResolverExpansionTests {
    @Test func aliasesAreExpandedRecursively() throws {
        let r = resolver(virtual: [("a@example.com", "b@example.com"), ("b@example.com", "c@x.example, d@x.example")])
        let resolution = try resolve("a@example.com", with: r)
        #expect(resolution.recipients.map(\.address) == ["c@x.example", "d@x.example"])
        #expect(resolution.status == .ok)
        #expect(resolution.steps.filter(\.matched).map(\.query) == ["a@example.com", "b@example.com"])
    }

    @Test func selfReferenceIsKeptAndNotExpandedAgain() throws {
        let r = resolver(
            virtual: [("a@vm.example", "a@vm.example, b@vm.example"), ("b@vm.example", "c@vm.example")],
            vmailbox: [("@vm.example", "vm.example/all/")])
        let resolution = try resolve("a@vm.example", with: r)
        #expect(resolution.status == .ok)
        #expect(resolution.recipients.map(\.address) == ["a@vm.example", "c@vm.example"])
        #expect(resolution.steps.first?.note?.contains("expands to itself") == true)
        #expect(resolution.recipients.allSatisfy { $0.outcome == .mailbox })
    }

    @Test func aLoopHitsTheRecursionLimit() throws {
        let r = resolver(virtual: [("a@example.com", "b@example.com"), ("b@example.com", "a@example.com")]) {
            $0.recursionLimit = 5
        }
        let resolution = try resolve("a@example.com", with: r)
        #expect(resolution.status == .deferred)
        #expect(
            resolution.reason
                == "unreasonable virtual_alias_maps map nesting for a@example.com"
                + " -- message not accepted, try again later")
        #expect(resolution.recipients.isEmpty)
        #expect(resolution.steps.count == 5)
        // The default limit (1000) stops it too.
        let unlimited = resolver(virtual: [("a@example.com", "b@example.com"), ("b@example.com", "a@example.com")])
        #expect(try resolve("a@example.com", with: unlimited).status == .deferred)
    }

    @Test func theRecursionLimitCountsLookupsBeforeTheNextOne() throws {
        // One alias needs a limit of 2: the limit is checked before every lookup, including the
        // one that finds the final address.
        let virtual = [("a@example.com", "b@x.example")]
        #expect(try resolve("a@example.com", with: resolver(virtual: virtual) { $0.recursionLimit = 2 }).status == .ok)
        #expect(
            try resolve("a@example.com", with: resolver(virtual: virtual) { $0.recursionLimit = 1 }).status == .deferred
        )
    }

    @Test func theRecursionLimitAppliesOnlyAlongTheFirstResult() throws {
        // a → b → c → z is three levels deep, but b and c are later results of their lists.
        let r = resolver(virtual: [
            ("a@example.com", "x1@x.example, b@example.com"),
            ("b@example.com", "y1@x.example, c@example.com"),
            ("c@example.com", "z@x.example"),
        ]) { $0.recursionLimit = 2 }
        let resolution = try resolve("a@example.com", with: r)
        #expect(resolution.status == .ok)
        #expect(resolution.recipients.map(\.address) == ["x1@x.example", "y1@x.example", "z@x.example"])
    }

    @Test func theExpansionLimitCapsTheNumberOfAddresses() throws {
        let virtual = [("a@example.com", "b@x.example, c@x.example, d@x.example, e@x.example")]
        let over = try resolve("a@example.com", with: resolver(virtual: virtual) { $0.expansionLimit = 3 })
        #expect(over.status == .deferred)
        #expect(over.reason?.hasPrefix("unreasonable virtual_alias_maps map expansion size for a@example.com") == true)
        let at = try resolve("a@example.com", with: resolver(virtual: virtual) { $0.expansionLimit = 4 })
        #expect(at.status == .ok)
        #expect(at.recipients.count == 4)
    }

    @Test func theAddressLengthLimitRejectsLongResults() throws {
        let virtual = [("a@example.com", "a-rather-long-name@x.example")]
        let over = try resolve("a@example.com", with: resolver(virtual: virtual) { $0.addressLengthLimit = 20 })
        #expect(over.status == .deferred)
        #expect(
            over.reason?.hasPrefix("unreasonable virtual_alias_maps result a-rather-long-name@x.example...") == true)
        #expect(try resolve("a@example.com", with: resolver(virtual: virtual)).status == .ok)
    }

    @Test func duplicateRecipientsAreDeliveredOnce() throws {
        let r = resolver(virtual: [("a@example.com", "b@x.example, B@X.example, c@x.example, b@x.example")])
        #expect(try resolve("a@example.com", with: r).recipients.map(\.address) == ["b@x.example", "c@x.example"])
    }
}

@Suite("Address resolver: domain classes and delivery (§10.7–§10.9)")
struct ResolverDeliveryTests {
    @Test func domainClassesInPostfixOrder() throws {
        let r = resolver { settings in
            settings.virtualAliasDomains = DomainList(names: ["valias.example", "host.example"])
        }
        #expect(r.classify("host.example").0 == .local)  // local wins over virtual alias
        #expect(r.classify("valias.example").0 == .virtualAlias)
        #expect(r.classify("vm.example").0 == .virtualMailbox)
        #expect(r.classify("relay.example").0 == .relay)
        #expect(r.classify("sub.relay.example").0 == .relay)  // relay_domains matches subdomains
        #expect(r.classify("sub.vm.example").0 == .default)  // string lists do not
        #expect(r.classify("[127.0.0.1]").0 == .local)
        #expect(r.classify("[192.0.2.1]").0 == .default)
        #expect(r.classify(nil).0 == .local)
    }

    @Test func virtualDomainsFromBareTableKeys() throws {
        let map = LookupMap(
            name: "virtual", entries: [("example.com", "anything"), ("@example.net", "jim"), ("u@example.org", "x")])
        var settings = testSettings()
        settings.virtualAliasDomains = DomainList(tables: [map])
        let r = AddressResolver(settings: settings, virtualMaps: [map])
        #expect(r.classify("example.com").0 == .virtualAlias)
        #expect(r.classify("EXAMPLE.COM").0 == .virtualAlias)
        #expect(r.classify("example.net").0 == .default)  // an @domain line does not declare it
        #expect(r.classify("example.org").0 == .default)
        #expect(r.classify("sub.example.com").0 == .default)
    }

    @Test func unknownUserInAVirtualAliasDomainIsRejected() throws {
        let map = LookupMap(name: "virtual", entries: [("example.com", "anything"), ("info@example.com", "joe")])
        var settings = testSettings()
        settings.virtualAliasDomains = DomainList(tables: [map])
        let r = AddressResolver(settings: settings, virtualMaps: [map])
        let unknown = try resolve("nobody@example.com", with: r)
        // smtpd(8) refuses it at RCPT TO: nothing in virtual_alias_maps matches.
        #expect(unknown.status == .refused)
        #expect(
            unknown.smtpReply
                == SMTPReply(
                    stage: .rcpt, code: 550, enhancedStatus: "5.1.1",
                    text: "<nobody@example.com>: Recipient address rejected: User unknown in virtual alias table"))
        let known = try resolve("info@example.com", with: r)
        #expect(known.status == .ok)
        #expect(known.recipients.first?.address == "joe@host.example")
        #expect(known.recipients.first?.outcome == .local)
    }

    @Test func virtualMailboxesAreMaildirOrMbox() throws {
        let r = resolver(vmailbox: [("ann@vm.example", "vm.example/ann/"), ("bob@vm.example", "vm.example/bob")])
        let ann = try #require(try resolve("ann@vm.example", with: r).recipients.first)
        #expect(ann.outcome == .mailbox)
        #expect(ann.format == .maildir)
        #expect(ann.mailbox == "vm.example/ann/")
        #expect(ann.path == "/var/vmail/vm.example/ann/")
        let bob = try #require(try resolve("bob@vm.example", with: r).recipients.first)
        #expect(bob.format == .mbox)
        #expect(bob.path == "/var/vmail/vm.example/bob")
        // The extension falls back as in every search.
        #expect(try resolve("ann+tag@vm.example", with: r).recipients.first?.mailbox == "vm.example/ann/")
    }

    @Test func unknownUserInAVirtualMailboxDomainIsRejected() throws {
        let r = resolver(vmailbox: [("ann@vm.example", "vm.example/ann/")])
        let resolution = try resolve("nobody@vm.example", with: r)
        #expect(resolution.status == .refused)
        #expect(resolution.smtpReply?.code == 550)
        #expect(resolution.smtpReply?.text.hasSuffix("User unknown in virtual mailbox table") == true)
    }

    @Test func aMissingMailboxBaseIsAWarning() throws {
        let r = resolver(vmailbox: [("ann@vm.example", "ann/")]) { $0.virtualMailboxBase = "" }
        let resolution = try resolve("ann@vm.example", with: r)
        #expect(resolution.status == .ok)
        #expect(resolution.recipients.first?.path == nil)
        #expect(resolution.warnings.first?.hasPrefix("virtual_mailbox_base is not set") == true)
    }

    @Test func localRecipientsAreLookedUpInAliasesWithAndWithoutExtension() throws {
        let r = resolver(aliases: [("joe", "joe.smith@x.example"), ("ann+list", "/var/lists/ann")])
        // local(8) sends the alias's address on in a new message (case 18 of the live oracle).
        let forwarded = try resolve("joe+tag@host.example", with: r)
        #expect(
            forwarded.steps.contains { $0.stage == .alias && $0.query == "joe" && $0.value == "joe.smith@x.example" })
        let joe = try #require(forwarded.recipients.first)
        #expect(joe.address == "joe.smith@x.example")
        #expect(joe.outcome == .remote)
        let ann = try resolve("ann+list@host.example", with: r)
        #expect(ann.recipients.first?.alias == "/var/lists/ann")
        #expect(ann.steps.last?.query == "ann+list")
        let bob = try #require(try resolve("bob+x@host.example", with: r).recipients.first)
        #expect(bob.alias == nil)
        #expect(bob.user == "bob")
    }

    @Test func relayAndDefaultDomainsGoElsewhere() throws {
        let r = resolver()
        #expect(try resolve("u@relay.example", with: r).recipients.first?.outcome == .relay)
        #expect(try resolve("u@far.example", with: r).recipients.first?.outcome == .remote)
    }

    @Test func domainListsHonourNegationAndParentStyle() {
        let list = DomainList(
            [(.name("bad.example.com"), true), (.name("example.com"), false)],
            kind: .hosts(parentMatchesSubdomains: true))
        #expect(list.contains("example.com", folding: .ascii))
        #expect(list.contains("a.example.com", folding: .ascii))
        #expect(!list.contains("bad.example.com", folding: .ascii))
        let dotted = DomainList(names: [".example.com"], kind: .hosts(parentMatchesSubdomains: false))
        #expect(dotted.contains("a.example.com", folding: .ascii))
        #expect(!dotted.contains("example.com", folding: .ascii))
        let table = LookupMap(name: "relays", entries: [("example.com", "x"), (".example.org", "x")])
        #expect(
            DomainList([(.table(table), false)], kind: .hosts(parentMatchesSubdomains: true)).contains(
                "a.b.example.com", folding: .ascii))
        #expect(
            DomainList([(.table(table), false)], kind: .hosts(parentMatchesSubdomains: false)).contains(
                "a.example.org", folding: .ascii))
        #expect(!DomainList([(.table(table), false)], kind: .strings).contains("a.example.com", folding: .ascii))
    }
}

@Suite("Address resolver: main.cf settings")
struct ResolverSettingsTests {
    private func settings(_ text: String) throws -> ResolverSettings {
        let config = try MainConfig(text: Array(text.utf8), path: "main.cf", directory: nil, warn: { _ in })
        var tables = TableLoader(handling: KeyHandling(folding: .ascii, utf8: false), warn: { _ in })
        return try ResolverSettings.load(from: try effectiveResolverConfig(config, tables: tables), tables: &tables)
    }

    @Test func postfixDefaultsApplyToUnsetParameters() throws {
        let s = try settings("myhostname = mx.example.com\ncompatibility_level = 3.6\n")
        #expect(s.myorigin == "mx.example.com")
        #expect(s.mydomain == "example.com")
        #expect(s.mydestination.contains("localhost.example.com", folding: .ascii))
        #expect(s.mydestination.contains("mx.example.com", folding: .ascii))
        #expect(!s.relayDomains.contains("mx.example.com", folding: .ascii))  // empty from level 2
        #expect(s.recipientDelimiters.isEmpty)
        #expect(s.recursionLimit == 1000 && s.expansionLimit == 1000 && s.addressLengthLimit == 1000)
        #expect(s.propagateToVirtual && !s.propagateToAlias)
        #expect(!s.appendDotMydomain)
        let old = try settings("myhostname = mx.example.com\n")
        #expect(old.relayDomains.contains("sub.mx.example.com", folding: .ascii))  // $mydestination below level 2
        #expect(old.appendDotMydomain)
    }

    @Test func mainCfOverridesAndChecksLimits() throws {
        let s = try settings(
            "myhostname = h.example.com\nmydomain = example.com\nmyorigin = $mydomain\nrecipient_delimiter = +-\n"
                + "virtual_alias_recursion_limit = 7\nvirtual_alias_expansion_limit = 8\n"
                + "virtual_alias_address_length_limit = 9\npropagate_unmatched_extensions = alias\n")
        #expect(s.myorigin == "example.com")
        #expect(s.recipientDelimiters == ["+", "-"])
        #expect(s.recursionLimit == 7 && s.expansionLimit == 8 && s.addressLengthLimit == 9)
        #expect(!s.propagateToVirtual && s.propagateToAlias)
        #expect(throws: FatalError("invalid virtual_alias_recursion_limit parameter value 0 < 1")) {
            try settings("myhostname = h.example.com\nvirtual_alias_recursion_limit = 0\n")
        }
        #expect(throws: FatalError("bad numerical configuration: virtual_alias_expansion_limit = many")) {
            try settings("myhostname = h.example.com\nvirtual_alias_expansion_limit = many\n")
        }
    }

    @Test func listsSplitAtCommasAndWhitespaceKeepingBraces() {
        #expect(splitPostfixList("a, b  c,,d") == ["a", "b", "c", "d"])
        #expect(splitPostfixList("inline:{a=b, c=d} hash:x") == ["inline:{a=b, c=d}", "hash:x"])
    }
}

@Suite("Expectation files")
struct ResolverExpectationFileTests {
    @Test func wordsCommentsAndQuotes() throws {
        let text = """
            # a comment

            info@example.com   joe@x.example LOCAL   # trailing comment
            "foo bar"@example.com  reject
            a@vm.example  mailbox:vm/a/ maildir defer
            """
        let expectations = try parseExpectations(Array(text.utf8), name: "exp")
        #expect(expectations.map(\.line) == [3, 4, 5])
        #expect(expectations[0].requirements == [.recipient("joe@x.example"), .outcome(.local)])
        #expect(expectations[1].internalAddress == "foo bar@example.com")
        #expect(expectations[1].statuses == [.refused, .bounced])
        #expect(expectations[2].requirements == [.mailbox("vm/a/"), .format(.maildir), .status([.deferred])])
        #expect(expectations[0].statuses == [.ok])
    }

    @Test func malformedLinesNameFileAndLine() {
        #expect(throws: FatalError("exp:2: no expected result for a@example.com")) {
            try parseExpectations(Array("# x\na@example.com\n".utf8), name: "exp")
        }
        #expect(throws: FatalError.self) { try parseExpectations(Array("a@example.com  bogus\n".utf8), name: "exp") }
        #expect(throws: FatalError("exp:1: more than one status word (ok, refused, deferred, bounced)")) {
            try parseExpectations(Array("a@example.com ok defer\n".utf8), name: "exp")
        }
        #expect(throws: FatalError("exp:1: unterminated quoted string")) {
            try parseExpectations(Array("\"a@example.com ok\n".utf8), name: "exp")
        }
    }

    @Test func checkingComparesRecipientSetsStatusAndOutcomes() throws {
        let r = resolver(
            virtual: [("sales@example.com", "jane, archive@vm.example")], vmailbox: [("@vm.example", "vm/all/")])
        let resolution = try resolve("sales@example.com", with: r)
        func check(_ line: String) throws -> Bool {
            let expectation = try #require(try parseExpectations(Array(line.utf8), name: "e").first)
            return expectation.check(resolution).passed
        }
        #expect(try check("sales@example.com  ARCHIVE@vm.example jane@host.example"))
        #expect(try check("sales@example.com  local mailbox:vm/all/ maildir"))
        #expect(try check("sales@example.com  mailbox:/var/vmail/vm/all/"))
        #expect(try !check("sales@example.com  jane@host.example"))  // a recipient is missing
        #expect(try !check("sales@example.com  reject"))
        #expect(try !check("sales@example.com  remote"))
        #expect(try !check("sales@example.com  mbox"))
        #expect(
            Expectation.describe(resolution) == [
                "jane@host.example", "archive@vm.example", "local", "mailbox:vm/all/", "ok",
            ])
    }
}

// MARK: - End to end

@Suite("swiftpostmap --resolve and --test", .serialized)
struct ResolverEndToEndTests {
    /// A directory with virtual and vmailbox sources and a main.cf (config/main.cf).
    private func setUp(_ dir: URL, extra: String = "") throws -> URL {
        try write(
            """
            example.com         anything
            info@example.com    joe
            sales@example.com   jane, archive@vm.example
            loop1@example.com   loop2@example.com
            loop2@example.com   loop1@example.com
            self@vm.example     self@vm.example, ann@vm.example

            """, to: "virtual", in: dir)
        try write(
            "ann@vm.example  vm.example/ann/\nself@vm.example  vm.example/self\n@vm.example  vm.example/all/\n",
            to: "vmailbox", in: dir)
        return try makeConfigDirectory(
            in: dir,
            extra: "mydomain = localdomain\nrecipient_delimiter = +\nvirtual_mailbox_domains = vm.example\n"
                + "virtual_mailbox_base = /srv/mail\nvirtual_alias_recursion_limit = 20\n" + extra)
    }

    private let maps = ["--virtual", "virtual", "--vmailbox", "vmailbox"]

    @Test func resolveText() throws {
        try withTemporaryDirectory { dir in
            let config = try setUp(dir)
            let ok = try swiftpostmap(
                ["-c", config.path] + maps + ["--resolve", "info+tag@example.com", "sales@example.com"], in: dir)
            #expect(ok.status == 0, "\(ok)")
            #expect(ok.err == "")
            #expect(ok.out.hasPrefix("info+tag@example.com\n"))
            #expect(
                ok.out.contains(
                    "  virtual_alias_maps: info+tag@example.com: key info@example.com in virtual (line 2): joe\n"),
                "\(ok.out)")
            #expect(ok.out.contains("    -> joe+tag@vm.localdomain\n"))
            #expect(ok.out.contains("  => joe+tag@vm.localdomain: local, local(8) user joe"))
            #expect(
                ok.out.contains(
                    "  => archive@vm.example: mailbox, Maildir vm.example/all/ (/srv/mail/vm.example/all/)"))
            #expect(ok.out.contains("\n\nsales@example.com\n"))

            let bad = try swiftpostmap(
                ["-c", config.path] + maps + ["--resolve", "nobody@example.com", "loop1@example.com"], in: dir)
            #expect(bad.status == 1)
            #expect(
                bad.out.contains(
                    "  smtp: RCPT -> 550 5.1.1 <nobody@example.com>: Recipient address rejected: "
                        + "User unknown in virtual alias table\n  status: refused (refused at SMTP)\n"), "\(bad.out)")
            #expect(bad.out.contains("  smtp: DATA -> 451 4.6.0 Alias expansion error\n"))
            #expect(
                bad.out.contains(
                    "  status: deferred (not delivered now, retried later): unreasonable virtual_alias_maps map "
                        + "nesting for loop1@example.com"))
        }
    }

    @Test func resolveJSON() throws {
        try withTemporaryDirectory { dir in
            let config = try setUp(dir)
            let result = try swiftpostmap(
                ["--json", "--main-cf", config.appendingPathComponent("main.cf").path] + maps
                    + ["--resolve", "self@vm.example", "loop1@example.com"], in: dir)
            #expect(result.status == 1)
            let lines = result.out.split(separator: "\n")
            #expect(lines.count == 2)
            let first = try #require(
                try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            #expect(first["address"] as? String == "self@vm.example")
            #expect(first["status"] as? String == "ok")
            let recipients = try #require(first["recipients"] as? [[String: Any]])
            #expect(recipients.map { $0["address"] as? String } == ["self@vm.example", "ann@vm.example"])
            #expect(recipients.map { $0["format"] as? String } == ["mbox", "maildir"])
            #expect(recipients.map { $0["class"] as? String } == ["virtual-mailbox", "virtual-mailbox"])
            #expect(recipients.first?["path"] as? String == "/srv/mail/vm.example/self")
            let steps = try #require(first["steps"] as? [[String: Any]])
            #expect(steps.first?["map"] as? String == "virtual")
            #expect(steps.first?["query"] as? String == "self@vm.example")
            #expect(
                Set(steps.first?.keys.map { $0 } ?? []) == [
                    "stage", "address", "matched", "query", "map", "value", "result", "tried", "note", "file", "line",
                ])
            #expect(steps.first?["line"] as? Int == 6)
            #expect(first["smtp"] is NSNull)
            let second = try #require(
                try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
            #expect(second["status"] as? String == "deferred")
            let smtp = try #require(second["smtp"] as? [String: Any])
            #expect(smtp["stage"] as? String == "DATA")
            #expect(smtp["code"] as? Int == 451)
            #expect((second["reason"] as? String)?.contains("map nesting") == true)
            #expect((second["recipients"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func mapsFromMainCf() throws {
        try withTemporaryDirectory { dir in
            let config = try setUp(
                dir,
                extra: "virtual_alias_maps = hash:\(dir.path)/virtual, nis:virtual\n"
                    + "virtual_mailbox_maps = proxy:hash:\(dir.path)/vmailbox\nalias_maps =\n")
            let env = ["MAIL_CONFIG": config.path]
            #expect(try swiftpostmap(["virtual"], in: dir, environment: env).status == 0)
            #expect(try swiftpostmap(["vmailbox"], in: dir, environment: env).status == 0)
            let result = try swiftpostmap(["--resolve", "sales@example.com"], in: dir, environment: env)
            #expect(result.status == 0, "\(result)")
            #expect(
                result.err
                    == "swiftpostmap: warning: virtual_alias_maps: nis:virtual cannot be read here (only hash:, btree:, "
                    + "lmdb:, cdb:, texthash: and exported pgsql: tables are): its answers are unknown\n")
            #expect(result.out.contains("key sales@example.com in hash:\(dir.path)/virtual: jane, archive@vm.example"))
            #expect(result.out.contains("key @vm.example in proxy:hash:\(dir.path)/vmailbox: vm.example/all/"))
        }
    }

    @Test func testModePassesAndFails() throws {
        try withTemporaryDirectory { dir in
            let config = try setUp(dir)
            try write(
                """
                # golden tests
                info@example.com     joe@vm.localdomain local
                nobody@example.com   reject
                loop1@example.com    defer
                ann+x@vm.example     mailbox:vm.example/ann/ maildir

                """, to: "good", in: dir)
            let good = try swiftpostmap(["-c", config.path] + maps + ["--test", "good"], in: dir)
            #expect(good.status == 0, "\(good)")
            #expect(good.out.hasPrefix("good:2: ok info@example.com: joe@vm.localdomain local\n"))
            #expect(good.out.hasSuffix("4 passed, 0 failed\n"))

            try write("info@example.com  jim@vm.localdomain\nnobody@example.com reject\n", to: "bad", in: dir)
            let bad = try swiftpostmap(["-c", config.path] + maps + ["--test", "bad"], in: dir)
            #expect(bad.status == 1)
            #expect(
                bad.out == """
                    bad:1: FAIL info@example.com: expected jim@vm.localdomain; got joe@vm.localdomain local ok
                    bad:2: ok nobody@example.com: reject
                    1 passed, 1 failed

                    """)

            let json = try swiftpostmap(["--json", "-c", config.path] + maps + ["--test", "bad"], in: dir)
            #expect(json.status == 1)
            #expect(json.err == "1 passed, 1 failed\n")
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data((json.out.split(separator: "\n").first ?? "").utf8))
                    as? [String: Any])
            #expect(object["passed"] as? Bool == false)
            #expect(object["line"] as? Int == 1)
            #expect(object["expected"] as? [String] == ["jim@vm.localdomain"])
            #expect(object["got"] as? [String] == ["joe@vm.localdomain", "local", "ok"])

            try write("info@example.com joe@vm.localdomain\nnobody@example.com whatever\n", to: "broken", in: dir)
            let broken = try swiftpostmap(["-c", config.path] + maps + ["--test", "broken"], in: dir)
            #expect(broken.status == 1)
            #expect(broken.out == "")
            #expect(broken.err.hasPrefix("swiftpostmap: fatal: broken:2: unknown expected result \"whatever\""))
        }
    }

    @Test func theFixtureExpectationsPass() throws {
        let result = try swiftpostmap(
            [
                "--main-cf", "Fixtures/main.cf", "--virtual", "Fixtures/virtual", "--vmailbox", "Fixtures/vmailbox",
                "--test", "Fixtures/expectations",
            ], in: packageRoot)
        #expect(result.status == 0, "\(result)")
        #expect(result.out.hasSuffix(" passed, 0 failed\n"))
        #expect(!result.out.contains("FAIL"))
    }
}

/// Findings of a review against Postfix 3.7's sources (smtpd_check.c, cleanup_map1n.c,
/// local/resolve.c, trivial-rewrite/resolve.c), each kept from coming back.
@Suite("Address resolver: review findings")
struct ResolverReviewTests {
    @Test func anUnreadableTableIsUnknownNotEmpty() throws {
        // virtual_mailbox_maps = proxy:mysql:… cannot be read here: no false 550.
        let r = AddressResolver(
            settings: testSettings(), mailboxMaps: [LookupMap(unreadable: "proxy:mysql:/etc/postfix/vm.cf")])
        let resolution = try resolve("info@vm.example", with: r)
        #expect(resolution.status == .ok)
        #expect(resolution.uncertain)
        #expect(resolution.assumptions.contains { $0.contains("proxy:mysql:/etc/postfix/vm.cf cannot be read here") })
    }

    @Test func aliasCyclesAreExpandedOnceEach() throws {
        let names = (0..<9).map { "g\($0)" }
        let aliases = names.map { name in (name, names.filter { $0 != name }.joined(separator: ", ")) }
        let resolution = try resolve("g0@host.example", with: resolver(aliases: aliases))
        #expect(resolution.recipients.count < 20, "\(resolution.recipients.count) recipients")
    }

    @Test func localAliasTargetsAreNotVirtualAliasExpanded() throws {
        // local(8) delivers a local target itself; only a forwarded address meets cleanup again.
        let r = resolver(
            virtual: [("admin@host.example", "someone@elsewhere.example")], aliases: [("root", "admin")])
        let resolution = try resolve("root@host.example", with: r)
        #expect(resolution.recipients.map(\.address) == ["admin@host.example"])
        #expect(resolution.recipients.first?.outcome == .local)
    }

    @Test func anErrorTransportRefusesAtRcpt() throws {
        var r = resolver()
        r.transportMaps = [LookupMap(name: "transport", entries: [("old.example", "error:5.1.1 this domain is gone")])]
        let resolution = try resolve("joe@old.example", with: r)
        #expect(resolution.status == .refused)
        #expect(resolution.smtpReply?.code == 550)
        #expect(resolution.smtpReply?.text == "<joe@old.example>: Recipient address rejected: this domain is gone")
    }

    @Test func withoutMailboxMapsAVirtualMailboxDomainAcceptsEveryone() throws {
        // An LMTP set-up: virtual_mailbox_domains set, virtual_mailbox_maps empty.
        let r = resolver { $0.virtualTransport = "lmtp:unix:private/dovecot-lmtp" }
        let resolution = try resolve("info@vm.example", with: r)
        #expect(resolution.status == .ok)
        #expect(resolution.recipients.first?.transport == "lmtp")
        #expect(resolution.recipients.first?.nexthop == "unix:private/dovecot-lmtp")
    }

    @Test func postmasterIsExemptFromTheLocalRecipientCheck() throws {
        let r = resolver { $0.consultPasswd = true }
        #expect(try resolve("postmaster@host.example", with: r).status != .refused)
        #expect(try resolve("no-such-passwd-user-x@host.example", with: r).status == .refused)
    }

    @Test func aLookupProblemIsAQueueFileWriteError() throws {
        let resolution = try resolve("a@example.com", with: resolver(virtual: [("a@example.com", "")]))
        #expect(resolution.status == .deferred)
        #expect(resolution.smtpReply?.enhancedStatus == "4.3.0")
        #expect(resolution.smtpReply?.text == "Error: queue file write error")
    }

    @Test func relayhostIsTheNextHopOfRelayDomainsToo() throws {
        let r = resolver { $0.relayhost = "[smarthost.example]" }
        #expect(try resolve("u@relay.example", with: r).recipients.first?.nexthop == "[smarthost.example]")
        #expect(try resolve("u@far.example", with: r).recipients.first?.nexthop == "[smarthost.example]")
    }

    @Test func transportMapsTryTheAddressWithoutItsExtension() throws {
        var r = resolver()
        r.transportMaps = [LookupMap(name: "transport", entries: [("joe@far.example", "smtp:[special.example]")])]
        #expect(try resolve("joe+tag@far.example", with: r).recipients.first?.nexthop == "[special.example]")
    }
}
