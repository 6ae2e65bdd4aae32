"""Object storage (S3, GCS) for packages and batches: the `cloud` extra.

`urls.py` imports nothing heavy and is all the rest of APE touches until a URL is given;
`objects.py` opens the stores (fsspec: s3fs, gcsfs), `publish.py` writes create-only,
`peek.py` inspects a remote package from a few byte ranges.
"""
