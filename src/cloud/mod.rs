//! The Alibaba Cloud VPC API client: signing, credentials, typed operations, typed errors.
//!
//! - [`signing`]: RPC V1 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256) signatures.
//! - [`credentials`]: [`Credentials`] (redacted in `Debug`) and the provider [`CredentialChain`].
//! - [`client`]: [`VpcClient`], the typed BGP operations, retries and the [`CallObserver`] hook.
//! - [`model`]: request and response types, lenient decoding of the wire.
//! - [`group`]: the BGP group operations and [`AuthKey`], the MD5 key held only in memory.
//! - [`network`]: the BGP network operations (Add/Delete/DescribeBgpNetworks).
//! - [`error`]: [`CloudError`], [`ErrorClass`], [`classify`] and the [`CLASSIFICATION`] table.
//! - [`endpoint`]: regional and central endpoints.
//! - [`ratelimit`]: the client-side limiter, one budget per (account, API operation).

pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod group;
pub mod model;
pub mod network;
pub mod ratelimit;
pub mod signing;

pub use client::{CallObserver, ClientConfig, RetryConfig, VpcClient, Walked};
pub use credentials::{CredentialChain, CredentialSource, Credentials};
pub use error::{
    ApiError, CLASSIFICATION, CloudError, ErrorClass, classification_markdown, classify,
};
pub use group::{
    AuthKey, CreateBgpGroupRequest, CreateBgpGroupResponse, DeleteBgpGroupRequest,
    ModifyBgpGroupAttributeRequest,
};
pub use model::{
    BgpGroupInfo, BgpPeerInfo, BgpSessionStatus, CreateBgpPeerRequest, CreateBgpPeerResponse,
    DeleteBgpPeerRequest, DescribeBgpGroupsPage, DescribeBgpGroupsRequest, DescribeBgpPeersPage,
    DescribeBgpPeersRequest, ModifyBgpPeerAttributeRequest, PeerListing, PeerStatus, RequestId,
};
pub use network::{
    AddBgpNetworkRequest, BgpNetworkInfo, DeleteBgpNetworkRequest, DescribeBgpNetworksPage,
    DescribeBgpNetworksRequest, NetworkListing, NetworkStatus,
};
pub use ratelimit::{CallKind, QuotaModel, QuotaScope, Rate, RateLimitConfig, RateLimiter};
pub use signing::SignatureVersion;
