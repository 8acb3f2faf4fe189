"""The check app: the history of ltrPreBackup checks, the ARM client, the background task that runs a
check, and the run / history / export views."""
