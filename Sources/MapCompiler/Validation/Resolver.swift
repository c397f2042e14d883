/// `--resolve` and `--test` (being written).
func runResolve(
    addresses: [String], options: ExtensionOptions, context: OperationContext
) throws(FatalError)
    -> Int32
{
    throw FatalError("--resolve is not available yet")
}

func runExpectations(file: String, options: ExtensionOptions, context: OperationContext) throws(FatalError) -> Int32 {
    throw FatalError("--test is not available yet")
}
