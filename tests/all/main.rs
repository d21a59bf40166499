//! End-to-end tests through the real `weir` binary.

mod admin;
mod aws_faults;
mod batch;
mod dynamodb_serving;
mod elasticsearch;
mod firehose;
mod foreign;
mod harness;
mod hostile_clients;
mod hostile_plugins;
mod inspect;
mod kinesis_endpoint;
mod kinesis_leases;
mod kinesis_log;
mod new_plugin;
mod openapi;
mod polyglot;
mod read_api;
mod reference_tables;
mod s3_lake;
mod send;
mod shared_registry;
mod sql_warehouse;
mod streaming;
mod tail;
mod tokens;
