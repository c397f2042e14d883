/// `--lint` (being written).
func runLint(operands: [String], options: ExtensionOptions, context: OperationContext) throws(FatalError) -> Int32 {
    throw FatalError("--lint is not available yet")
}
