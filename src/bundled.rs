//! `@name.ext` in provider commands: scripts from `assets/` compiled into the
//! binary and extracted on first use.
