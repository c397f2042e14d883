/// `--check` (being written).
func runIntegrityCheck(
    operands: [String], options: ExtensionOptions, context: OperationContext
) throws(FatalError)
    -> Int32
{
    throw FatalError("--check is not available yet")
}
