//! The API actions the emulator serves and the product each belongs to.

/// A product (API) served by the emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// VPC 2016-04-28.
    Vpc,
    /// STS 2015-04-01.
    Sts,
}

impl Product {
    /// API version.
    pub fn version(self) -> &'static str {
        match self {
            Self::Vpc => "2016-04-28",
            Self::Sts => "2015-04-01",
        }
    }

    /// Product name as used in the `Recommend` link.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vpc => "Vpc",
            Self::Sts => "Sts",
        }
    }
}

/// An action (API operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// CreateBgpPeer.
    CreateBgpPeer,
    /// DescribeBgpPeers.
    DescribeBgpPeers,
    /// ModifyBgpPeerAttribute.
    ModifyBgpPeerAttribute,
    /// DeleteBgpPeer.
    DeleteBgpPeer,
    /// CreateBgpGroup.
    CreateBgpGroup,
    /// DescribeBgpGroups.
    DescribeBgpGroups,
    /// ModifyBgpGroupAttribute.
    ModifyBgpGroupAttribute,
    /// DeleteBgpGroup.
    DeleteBgpGroup,
    /// AddBgpNetwork.
    AddBgpNetwork,
    /// DeleteBgpNetwork.
    DeleteBgpNetwork,
    /// DescribeBgpNetworks.
    DescribeBgpNetworks,
    /// STS AssumeRole (signed).
    AssumeRole,
    /// STS AssumeRoleWithOIDC (unsigned).
    AssumeRoleWithOidc,
    /// STS GetCallerIdentity (signed).
    GetCallerIdentity,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 14] = [
        Self::CreateBgpPeer,
        Self::DescribeBgpPeers,
        Self::ModifyBgpPeerAttribute,
        Self::DeleteBgpPeer,
        Self::CreateBgpGroup,
        Self::DescribeBgpGroups,
        Self::ModifyBgpGroupAttribute,
        Self::DeleteBgpGroup,
        Self::AddBgpNetwork,
        Self::DeleteBgpNetwork,
        Self::DescribeBgpNetworks,
        Self::AssumeRole,
        Self::AssumeRoleWithOidc,
        Self::GetCallerIdentity,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateBgpPeer => "CreateBgpPeer",
            Self::DescribeBgpPeers => "DescribeBgpPeers",
            Self::ModifyBgpPeerAttribute => "ModifyBgpPeerAttribute",
            Self::DeleteBgpPeer => "DeleteBgpPeer",
            Self::CreateBgpGroup => "CreateBgpGroup",
            Self::DescribeBgpGroups => "DescribeBgpGroups",
            Self::ModifyBgpGroupAttribute => "ModifyBgpGroupAttribute",
            Self::DeleteBgpGroup => "DeleteBgpGroup",
            Self::AddBgpNetwork => "AddBgpNetwork",
            Self::DeleteBgpNetwork => "DeleteBgpNetwork",
            Self::DescribeBgpNetworks => "DescribeBgpNetworks",
            Self::AssumeRole => "AssumeRole",
            Self::AssumeRoleWithOidc => "AssumeRoleWithOIDC",
            Self::GetCallerIdentity => "GetCallerIdentity",
        }
    }

    /// Looks an action up by its exact wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The product.
    pub fn product(self) -> Product {
        match self {
            Self::AssumeRole | Self::AssumeRoleWithOidc | Self::GetCallerIdentity => Product::Sts,
            _ => Product::Vpc,
        }
    }

    /// Whether the action changes state (and so honours `ClientToken`).
    pub fn is_mutating(self) -> bool {
        !matches!(
            self,
            Self::DescribeBgpPeers
                | Self::DescribeBgpGroups
                | Self::DescribeBgpNetworks
                | Self::AssumeRole
                | Self::AssumeRoleWithOidc
                | Self::GetCallerIdentity
        )
    }

    /// Whether the action is called without a signature.
    pub fn is_anonymous(self) -> bool {
        matches!(self, Self::AssumeRoleWithOidc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert_eq!(Action::parse("createbgppeer"), None);
        assert_eq!(Action::parse("DescribeRegions"), None);
        assert_eq!(Action::AssumeRoleWithOidc.product().version(), "2015-04-01");
        assert!(Action::DeleteBgpGroup.is_mutating());
        assert!(!Action::DescribeBgpGroups.is_mutating());
    }
}
