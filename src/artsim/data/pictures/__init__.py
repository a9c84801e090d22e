"""Pictures: open any image a user may hand us (:mod:`.images`), and parts of a picture
(:mod:`.crops`)."""
