"""The Azure Resource Manager client: everything one call to Azure does on the wire, in one place.

A call here owns the whole conversation: the caller's delegated token (and its renewal when Continuous
Access Evaluation challenges it), a token from ARM's rate bucket before every attempt (`pacing`), the attempt,
the wait before the next one (backoff with jitter from the first retry, or Azure's `Retry-After` in any of its
forms), the deadline that clips every wait and read, and the classification of the answer (`outcomes`). Every
attempt is recorded as it happened. The package knows nothing of the apps that use it: callers pass a token
source and get a result back (`operations.ltr_pre_backup`, `operations.get_all_pages`).

It is a Django app only for the shared copy of ARM's rate buckets (`models.RateBucket`). It is not named
`azure`: that is the Azure SDK's namespace package.
"""
