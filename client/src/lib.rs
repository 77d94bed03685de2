//! `runnel-client`: a pure-Rust producer, consumer and admin client with
//! Kafka's settings.
//!
//! Empty until the client issue lands.
