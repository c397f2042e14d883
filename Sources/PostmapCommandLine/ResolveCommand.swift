import MapCompiler

/// `--resolve` and `--test`: what Postfix would do with recipient addresses, given the maps.
///
/// The maps are `--virtual MAP`, `--vmailbox MAP` and `--alias-map MAP` (each repeatable, in
/// search order; a source compiled in memory, `NAME.db` or `type:NAME`). When none of these
/// options is given, the maps are main.cf's `virtual_alias_maps`, `virtual_mailbox_maps` and
/// `alias_maps` (Postfix's defaults when unset): their `hash:` and `btree:` elements are read
/// from `NAME.db` (through `proxy:`), other elements are skipped with a warning. The settings
/// come from main.cf (`-c DIR`, `--main-cf FILE`, `$MAIL_CONFIG`), see
/// `AddressResolver.init(configuration:configurationKnown:handling:maps:warn:)`.
///
/// `--resolve ADDRESS...` prints one block per address: each lookup (the key that matched,
/// the map, the value and the addresses it gave, or the keys tried in vain), then each final
/// recipient with its domain class and fate, then the status. Exit status 0 when every
/// address has status `ok`, 1 otherwise.
///
/// With `--json`, one JSON object per address (JSON Lines), always with these fields:
///
/// * `address`: the address as given; `canonical`: the address expansion started from;
/// * `status`: `ok`, `reject` or `defer`; `reason`: why the whole expansion deferred, or null;
/// * `steps`: lookups in order, each `{stage, address, matched, query, map, value, result,
///   tried, note}`: `stage` is `canonical`, `virtual` (virtual_alias_maps), `vmailbox`
///   (virtual_mailbox_maps) or `alias` (aliases(5)); `query`, `map`, `value` are the key that
///   matched, where, and the raw value (null when nothing matched); `result` the addresses a
///   canonical or virtual step produced (for a virtual step that matched nothing: the address
///   itself, which is final); `tried` every key asked, in order; `note` or null;
/// * `recipients`: each final recipient `{address, class, result, via, mailbox, path, format,
///   alias, user, reason}`: `class` is `local`, `virtual-alias`, `virtual-mailbox`, `relay` or
///   `default`; `result` is `local`, `mailbox`, `relay`, `remote`, `reject` or `defer`; `via`
///   how the class was decided; `mailbox` the virtual_mailbox_maps value, `path`
///   `virtual_mailbox_base/value` (null when the base is not set), `format` `maildir` or
///   `mbox`; `alias` the aliases(5) value and `user` the local(8) user when no alias matched;
///   `reason` why a recipient is rejected or deferred; unused fields are null;
/// * `warnings`: configuration problems that do not change the result.
///
/// `--test FILE` checks an expectations file (see ``Expectation``).
func runResolve(
    addresses: [String], options: ExtensionOptions, context: OperationContext
) throws(FatalError)
    -> Int32
{
    let resolver = try makeResolver(options: options, context: context)
    var allOK = true
    for (index, text) in addresses.enumerated() {
        guard let address = parseInputAddress(text) else { throw FatalError("bad address: \"\(text)\"") }
        let resolution = resolver.resolve(address, display: text)
        if resolution.status != .ok { allOK = false }
        let output = options.json ? resolutionJSON(resolution).line : Array(resolutionText(resolution).utf8)
        if !options.json && index > 0 { context.output.standardOutput([0x0A]) }
        context.output.standardOutput(output)
    }
    return allOK ? 0 : 1
}

/// `--test FILE`: every line of the expectations file is resolved and checked; text lines
/// `FILE:LINE: ok ADDRESS: EXPECTED` or `FILE:LINE: FAIL ADDRESS: expected EXPECTED; got
/// ACTUAL`, then `N passed, M failed`. With `--json`, one object per expectation
/// `{file, line, address, passed, expected, got, status, reason}` (`expected` and `got` are
/// word lists in the expectation vocabulary, `reason` why the resolution deferred or
/// rejected, or null) and the summary on standard error. Exit status 1 when any expectation
/// fails; a malformed file is a fatal error naming `FILE:LINE`.
func runExpectations(file: String, options: ExtensionOptions, context: OperationContext) throws(FatalError) -> Int32 {
    guard context.options.operands.isEmpty else {
        throw FatalError("usage: --test FILE [--virtual MAP] [--vmailbox MAP] [--alias-map MAP] (no operands)")
    }
    let expectations = try loadExpectations(file: file)
    let resolver = try makeResolver(options: options, context: context)
    var passed = 0
    var failed = 0
    for expectation in expectations {
        let resolution = resolver.resolve(expectation.internalAddress, display: expectation.address)
        let (ok, got) = expectation.check(resolution)
        if ok { passed += 1 } else { failed += 1 }
        let reason = resolution.reason ?? resolution.recipients.compactMap(\.reason).first
        if options.json {
            var object = JSONObject()
            object.add("file", file)
            object.add("line", expectation.line)
            object.add("address", expectation.address)
            object.add("passed", ok)
            object.add("expected", expectation.words)
            object.add("got", got)
            object.add("status", resolution.status.rawValue)
            if let reason { object.add("reason", reason) } else { object.addNull("reason") }
            context.output.standardOutput(object.line)
        } else {
            let expected = expectation.words.joined(separator: " ")
            var line = "\(file):\(expectation.line): "
            if ok {
                line += "ok \(expectation.address): \(expected)\n"
            } else {
                line += "FAIL \(expectation.address): expected \(expected); got \(got.joined(separator: " "))"
                if resolution.status != .ok, let reason { line += " (\(reason))" }
                line += "\n"
            }
            context.output.standardOutput(Array(line.utf8))
        }
    }
    let summary = "\(passed) passed, \(failed) failed"
    if options.json {
        context.output.standardError(summary)
    } else {
        context.output.standardOutput(Array((summary + "\n").utf8))
    }
    return failed == 0 ? 0 : 1
}

/// The resolver for a run: the maps of the options (or of main.cf) and main.cf's settings.
private func makeResolver(
    options: ExtensionOptions, context: OperationContext
) throws(FatalError)
    -> AddressResolver
{
    var maps: ResolverMaps? = nil
    if !(options.virtualMaps.isEmpty && options.mailboxMaps.isEmpty && options.aliasMaps.isEmpty) {
        func load(_ operands: [String], format: SourceFormat) throws(FatalError) -> [LookupMap] {
            var maps: [LookupMap] = []
            for operand in operands {
                let contents = try MapContents.load(
                    MapArgument(operand), format: format, handling: context.handling, warn: context.warn)
                maps.append(LookupMap(name: operand, contents: contents))
            }
            return maps
        }
        maps = ResolverMaps(
            virtual: try load(options.virtualMaps, format: .postmap),
            mailbox: try load(options.mailboxMaps, format: .postmap),
            alias: try load(options.aliasMaps, format: .postalias))
    }
    var resolver = try AddressResolver(
        configuration: context.config, configurationKnown: context.configIsExplicit, handling: context.handling,
        maps: maps, warn: context.warn)
    resolver.settings.consultPasswd = options.consultPasswd
    return resolver
}

// MARK: - Text

/// The human-readable block for one resolution (see ``runResolve(addresses:options:context:)``).
func resolutionText(_ resolution: Resolution) -> String {
    var out = resolution.input + "\n"
    // A loop repeats itself up to the recursion limit: show its start and its end.
    let steps = resolution.steps
    if steps.count > 40 {
        for step in steps.prefix(20) { out += stepText(step) }
        out += "  ... \(steps.count - 30) more lookups ...\n"
        for step in steps.suffix(10) { out += stepText(step) }
    } else {
        for step in steps { out += stepText(step) }
    }
    if let reply = resolution.smtpReply { out += "  smtp: \(reply.stage.rawValue) -> \(reply)\n" }
    for recipient in resolution.recipients { out += "  => " + recipientText(recipient) + "\n" }
    for warning in resolution.warnings { out += "  warning: \(warning)\n" }
    for assumption in resolution.assumptions { out += "  assumed: \(assumption)\n" }
    out += "  status: \(resolution.status.rawValue) (\(statusText(resolution.status)))"
    if let reason = resolution.reason, resolution.smtpReply?.stage != .rcpt { out += ": \(reason)" }
    return out + "\n"
}

/// What a status means for the sender, in a few words.
func statusText(_ status: Resolution.Status) -> String {
    switch status {
    case .ok: return "accepted and delivered"
    case .refused: return "refused at SMTP"
    case .deferred: return "not delivered now, retried later"
    case .bounced: return "accepted, then bounced"
    }
}

private func stepText(_ step: ResolutionStep) -> String {
    let title: String
    switch step.stage {
    case .canonical:
        return "  canonical: \(step.address) -> \(step.result.joined(separator: ", "))"
            + (step.note.map { " (\($0))" } ?? "") + "\n"
    case .virtual: title = "virtual_alias_maps"
    case .vmailbox: title = "virtual_mailbox_maps"
    case .alias: title = "alias_maps"
    case .transport: title = "transport_maps"
    }
    var out = "  \(title): \(step.address): "
    if step.matched, let query = step.query, let map = step.map, let value = step.value {
        out += "key \(query) in \(map)\(step.source.map { " (line \($0.line))" } ?? ""): \(value)\n"
        if step.stage == .virtual { out += "    -> \(step.result.joined(separator: ", "))\n" }
        if let note = step.note { out += "    (\(note))\n" }
    } else if let note = step.note {
        out += note + "\n"
    } else {
        out += "not found (tried \(step.tried.joined(separator: ", ")))\n"
    }
    return out
}

private func recipientText(_ recipient: ResolvedRecipient) -> String {
    var out = "\(recipient.address): \(recipient.outcome.rawValue)"
    let hop = (recipient.transport ?? "") + ":" + (recipient.nexthop ?? "")
    switch recipient.outcome {
    case .local:
        if let alias = recipient.alias {
            out += ", aliases(5): \(alias)"
        } else if let user = recipient.user {
            out += ", local(8) user \(user)"
        }
    case .mailbox:
        out += ", \(recipient.format == .maildir ? "Maildir" : "mbox file") \(recipient.mailbox ?? "")"
        if let path = recipient.path { out += " (\(path))" }
    case .relay:
        out += " via relay_transport \(hop)"
    case .remote:
        out += " via default_transport \(hop)"
    case .transport:
        out += " via \(hop)"
        if let reason = recipient.reason { out += " (\(reason))" }
    case .bounced, .deferred:
        if let reason = recipient.reason { out += ": \(reason)" }
    }
    return out + " [\(recipient.via)]"
}

// MARK: - JSON

/// The JSON object for one resolution (fields documented at
/// ``runResolve(addresses:options:context:)``).
func resolutionJSON(_ resolution: Resolution) -> JSONObject {
    var object = JSONObject()
    object.add("address", resolution.input)
    object.add("canonical", resolution.canonical)
    object.add("status", resolution.status.rawValue)
    addOptional(&object, "reason", resolution.reason)
    if let reply = resolution.smtpReply {
        var smtp = JSONObject()
        smtp.add("stage", reply.stage.rawValue)
        smtp.add("code", reply.code)
        smtp.add("status", reply.enhancedStatus)
        smtp.add("text", reply.text)
        object.add("smtp", raw: smtp.text)
    } else {
        object.addNull("smtp")
    }
    object.add("steps", raw: "[" + resolution.steps.map { stepJSON($0).text }.joined(separator: ",") + "]")
    object.add(
        "recipients", raw: "[" + resolution.recipients.map { recipientJSON($0).text }.joined(separator: ",") + "]")
    object.add("warnings", resolution.warnings)
    object.add("assumptions", resolution.assumptions)
    return object
}

private func stepJSON(_ step: ResolutionStep) -> JSONObject {
    var object = JSONObject()
    object.add("stage", step.stage.rawValue)
    object.add("address", step.address)
    object.add("matched", step.matched)
    addOptional(&object, "query", step.query)
    addOptional(&object, "map", step.map)
    addOptional(&object, "value", step.value)
    object.add("result", step.result)
    object.add("tried", step.tried)
    addOptional(&object, "note", step.note)
    addOptional(&object, "file", step.source?.file)
    if let line = step.source?.line { object.add("line", line) } else { object.addNull("line") }
    return object
}

private func recipientJSON(_ recipient: ResolvedRecipient) -> JSONObject {
    var object = JSONObject()
    object.add("address", recipient.address)
    object.add("class", recipient.domainClass.rawValue)
    object.add("result", recipient.outcome.rawValue)
    object.add("via", recipient.via)
    addOptional(&object, "transport", recipient.transport)
    addOptional(&object, "nexthop", recipient.nexthop)
    addOptional(&object, "mailbox", recipient.mailbox)
    addOptional(&object, "path", recipient.path)
    addOptional(&object, "format", recipient.format?.rawValue)
    addOptional(&object, "alias", recipient.alias)
    addOptional(&object, "user", recipient.user)
    addOptional(&object, "reason", recipient.reason)
    return object
}

private func addOptional(_ object: inout JSONObject, _ name: String, _ value: String?) {
    if let value { object.add(name, value) } else { object.addNull(name) }
}
