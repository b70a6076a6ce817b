"""Models: the audio-LLM policy, the expert reference, and tiny builders for tests."""
