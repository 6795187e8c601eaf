//! textstore's criterion suites live in `benches/`: `cargo bench -p textstore-benches`, or
//! every suite of the workspace with `cargo xtask bench --criterion`.
