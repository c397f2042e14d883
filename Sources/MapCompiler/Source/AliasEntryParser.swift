/// postalias(1) sources: aliases(5) syntax. Filled in by the postalias work (issue 3).
func compileAliases(
    from bytes: [UInt8], sourceName: String, request: BuildRequest, into writer: inout TableWriter,
    summary: inout BuildSummary, warn: (Diagnostic) -> Void
) throws(FatalError) {
    throw FatalError("postalias format is not implemented yet")
}
