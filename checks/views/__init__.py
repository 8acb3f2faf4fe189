"""The checks app's pages: servers (the list, a server's page, running a check), history, batches."""
