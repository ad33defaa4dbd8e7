"""The consumer's self-care pages and the live websocket every portal page listens to."""
