"""aria2c: finding and running the daemon (``process``), talking to it (``rpc``)."""
