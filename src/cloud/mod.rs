//! The Alibaba Cloud VPC API client: signing, credentials, typed operations, typed errors.

pub mod cli;
pub mod credentials;
pub mod error;
pub mod signing;

pub use credentials::{CredentialChain, CredentialSource, Credentials};
pub use error::{ApiError, CLASSIFICATION, CloudError, ErrorClass, classify};
pub use signing::SignatureVersion;
