"""Differential tests: LangChain's LogStreamCallbackHandler vs logstream's."""
