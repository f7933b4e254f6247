"""One module per fuzz target; each defines ``one_input(data: bytes) -> None``.

A target may also define ``DICTIONARY`` (tokens libFuzzer splices into inputs) and
``MAX_LEN`` (the longest input libFuzzer tries; 4096 when absent).  Importing a target
must be cheap: anything costly (certificates, TLS contexts) is made on first use.
"""
