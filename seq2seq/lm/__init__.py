"""The character language model task (`task: lm`): data, model, truncated BPTT and generation."""
