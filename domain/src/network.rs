//! The networks we accept USDC on: v1 name <-> CAIP-2 id <-> chain id <-> USDC deployment
//! (address and EIP-712 domain). Facts from `x402.md`; the EIP-712 `name` differs between
//! testnets ("USDC") and mainnets ("USD Coin"), and the chain id always comes from here,
//! never from a constant at the call site.

use alloy_primitives::{Address, address};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An EVM network on which USDC payments are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Network {
    BaseSepolia,
    Base,
    EthereumSepolia,
    Ethereum,
    ArbitrumSepolia,
    Arbitrum,
    Polygon,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("unknown network {0:?}: expected one of {known}", known = Network::known_names())]
    Unknown(String),
    #[error("unknown chain id {0}")]
    UnknownChainId(u64),
}

struct NetworkFacts {
    network: Network,
    v1_name: &'static str,
    caip2: &'static str,
    chain_id: u64,
    usdc: Address,
    usdc_name: &'static str,
    testnet: bool,
}

const TABLE: [NetworkFacts; 7] = [
    NetworkFacts {
        network: Network::BaseSepolia,
        v1_name: "base-sepolia",
        caip2: "eip155:84532",
        chain_id: 84532,
        usdc: address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        usdc_name: "USDC",
        testnet: true,
    },
    NetworkFacts {
        network: Network::Base,
        v1_name: "base",
        caip2: "eip155:8453",
        chain_id: 8453,
        usdc: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
        usdc_name: "USD Coin",
        testnet: false,
    },
    NetworkFacts {
        network: Network::EthereumSepolia,
        v1_name: "ethereum-sepolia",
        caip2: "eip155:11155111",
        chain_id: 11_155_111,
        usdc: address!("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"),
        usdc_name: "USDC",
        testnet: true,
    },
    NetworkFacts {
        network: Network::Ethereum,
        v1_name: "ethereum",
        caip2: "eip155:1",
        chain_id: 1,
        usdc: address!("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"),
        usdc_name: "USD Coin",
        testnet: false,
    },
    NetworkFacts {
        network: Network::ArbitrumSepolia,
        v1_name: "arbitrum-sepolia",
        caip2: "eip155:421614",
        chain_id: 421_614,
        usdc: address!("0x75faf114eafb1BDbe2F0316DF893fd58CE46AA4d"),
        usdc_name: "USDC",
        testnet: true,
    },
    NetworkFacts {
        network: Network::Arbitrum,
        v1_name: "arbitrum",
        caip2: "eip155:42161",
        chain_id: 42161,
        usdc: address!("0xaf88d065e77c8cC2239327C5EDb3A432268e5831"),
        usdc_name: "USD Coin",
        testnet: false,
    },
    NetworkFacts {
        network: Network::Polygon,
        v1_name: "polygon",
        caip2: "eip155:137",
        chain_id: 137,
        usdc: address!("0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359"),
        usdc_name: "USD Coin",
        testnet: false,
    },
];

/// The EIP-712 version of every USDC deployment in the table (FiatToken v2.x).
pub const USDC_EIP712_VERSION: &str = "2";

impl Network {
    pub const ALL: [Network; 7] = [
        Network::BaseSepolia,
        Network::Base,
        Network::EthereumSepolia,
        Network::Ethereum,
        Network::ArbitrumSepolia,
        Network::Arbitrum,
        Network::Polygon,
    ];

    fn facts(self) -> &'static NetworkFacts {
        // The table is ordered like `ALL`; the index is the discriminant.
        &TABLE[self as usize]
    }

    /// The x402 v1 / Crossmint name, e.g. `base-sepolia`.
    pub fn v1_name(self) -> &'static str {
        self.facts().v1_name
    }

    /// The CAIP-2 id used by x402 v2, e.g. `eip155:84532`.
    pub fn caip2(self) -> &'static str {
        self.facts().caip2
    }

    pub fn chain_id(self) -> u64 {
        self.facts().chain_id
    }

    pub fn is_testnet(self) -> bool {
        self.facts().testnet
    }

    /// Circle's USDC on this network.
    pub fn usdc(self) -> UsdcDeployment {
        let facts = self.facts();
        UsdcDeployment {
            network: self,
            address: facts.usdc,
            eip712_name: facts.usdc_name.to_owned(),
            eip712_version: USDC_EIP712_VERSION.to_owned(),
        }
    }

    pub fn from_v1_name(name: &str) -> Result<Self, NetworkError> {
        TABLE
            .iter()
            .find(|f| f.v1_name == name)
            .map(|f| f.network)
            .ok_or_else(|| NetworkError::Unknown(name.to_owned()))
    }

    pub fn from_caip2(id: &str) -> Result<Self, NetworkError> {
        TABLE
            .iter()
            .find(|f| f.caip2 == id)
            .map(|f| f.network)
            .ok_or_else(|| NetworkError::Unknown(id.to_owned()))
    }

    pub fn from_chain_id(chain_id: u64) -> Result<Self, NetworkError> {
        TABLE
            .iter()
            .find(|f| f.chain_id == chain_id)
            .map(|f| f.network)
            .ok_or(NetworkError::UnknownChainId(chain_id))
    }

    /// Accepts either spelling: a v1 name or a CAIP-2 id.
    pub fn parse(id: &str) -> Result<Self, NetworkError> {
        Self::from_v1_name(id).or_else(|_| Self::from_caip2(id))
    }

    fn known_names() -> String {
        TABLE
            .iter()
            .map(|f| f.v1_name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.v1_name())
    }
}

impl FromStr for Network {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Network {
    type Error = NetworkError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Network> for String {
    fn from(network: Network) -> Self {
        network.v1_name().to_owned()
    }
}

/// A USDC-like EIP-3009 token on a network: where it lives and its EIP-712 domain.
///
/// Circle's deployments come from [`Network::usdc`]; the sandbox and test chains deploy
/// their own token at another address on the same chain id, so the deployment is data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsdcDeployment {
    pub network: Network,
    #[serde(with = "crate::eip3009::checksum")]
    pub address: Address,
    pub eip712_name: String,
    pub eip712_version: String,
}

impl UsdcDeployment {
    /// The EIP-712 domain that authorizations for this token are signed under.
    pub fn eip712_domain(&self) -> crate::eip3009::Eip712Domain {
        crate::eip3009::Eip712Domain {
            name: self.eip712_name.clone(),
            version: self.eip712_version.clone(),
            chain_id: self.network.chain_id(),
            verifying_contract: self.address,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_round_trips_through_each_spelling() {
        for network in Network::ALL {
            assert_eq!(Network::from_v1_name(network.v1_name()), Ok(network));
            assert_eq!(Network::from_caip2(network.caip2()), Ok(network));
            assert_eq!(Network::from_chain_id(network.chain_id()), Ok(network));
            assert_eq!(network.caip2(), format!("eip155:{}", network.chain_id()));
            assert_eq!(network.usdc().network, network);
        }
    }

    #[test]
    fn mainnet_usdc_is_named_usd_coin_and_testnet_usdc_is_named_usdc() {
        for network in Network::ALL {
            let expected = if network.is_testnet() {
                "USDC"
            } else {
                "USD Coin"
            };
            assert_eq!(network.usdc().eip712_name, expected, "{network}");
        }
        assert_eq!(Network::Base.usdc().eip712_domain().chain_id, 8453);
    }

    #[test]
    fn unknown_networks_are_a_typed_error() {
        assert!(matches!(
            Network::parse("solana"),
            Err(NetworkError::Unknown(_))
        ));
        assert!(matches!(
            Network::parse("eip155:999"),
            Err(NetworkError::Unknown(_))
        ));
        assert_eq!(
            Network::from_chain_id(5),
            Err(NetworkError::UnknownChainId(5))
        );
        assert!(serde_json::from_str::<Network>("\"BASE\"").is_err());
        assert_eq!(
            serde_json::from_str::<Network>("\"eip155:8453\"").unwrap(),
            Network::Base
        );
    }
}
