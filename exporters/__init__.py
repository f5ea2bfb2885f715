"""Where collected data goes next: the store in-process, or the server over HTTP, through a disk buffer."""
