//! RegisterBrokerRecord (api key 0, versions 0-3): a broker's registration
//! with the controller.
//!
//! | field                 | type             | versions      |
//! |-----------------------|------------------|---------------|
//! | BrokerId              | int32            | 0+            |
//! | IsMigratingZkBroker   | bool             | 2+            |
//! | IncarnationId         | uuid             | 0+            |
//! | BrokerEpoch           | int64            | 0+            |
//! | EndPoints             | [](Name string, Host string, Port uint16, SecurityProtocol int16) | 0+ |
//! | Features              | [](Name string, MinSupportedVersion int16, MaxSupportedVersion int16) | 0+ |
//! | Rack                  | nullable string  | 0+            |
//! | Fenced                | bool             | 0+            |
//! | InControlledShutdown  | bool             | 1+            |
//! | LogDirs               | []uuid, tag 0    | 3+ (tagged)   |

use bytes::{BufMut, BytesMut};
use uuid::Uuid;

use super::Body;
use crate::wire::{
    DecodeError, EncodeError, Reader, TaggedFields, check_field, put_array_len, put_bool,
    put_nullable_string, put_string, put_uuid, put_uuids,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterBrokerRecord {
    pub version: i16,
    pub broker_id: i32,
    pub is_migrating_zk_broker: bool,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub end_points: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub log_dirs: Vec<Uuid>,
}

/// A listener of the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Kafka's `SecurityProtocol` id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT,
    /// 3 SASL_SSL.
    pub security_protocol: i16,
}

/// A feature the broker supports, with the levels it can run at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerFeature {
    pub name: String,
    pub min_supported_version: i16,
    pub max_supported_version: i16,
}

impl Default for RegisterBrokerRecord {
    fn default() -> Self {
        Self {
            version: Self::LATEST,
            broker_id: 0,
            is_migrating_zk_broker: false,
            incarnation_id: Uuid::nil(),
            broker_epoch: 0,
            end_points: Vec::new(),
            features: Vec::new(),
            rack: None,
            fenced: true,
            in_controlled_shutdown: false,
            log_dirs: Vec::new(),
        }
    }
}

impl RegisterBrokerRecord {
    pub const LATEST: i16 = 3;
}

impl Body for RegisterBrokerRecord {
    const NAME: &'static str = "RegisterBrokerRecord";
    const API_KEY: u16 = 0;
    const MAX_VERSION: i16 = Self::LATEST;

    fn version(&self) -> i16 {
        self.version
    }

    fn write(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v = self.version;
        out.put_i32(self.broker_id);
        if v >= 2 {
            put_bool(out, self.is_migrating_zk_broker);
        } else {
            check_field(
                !self.is_migrating_zk_broker,
                Self::NAME,
                "IsMigratingZkBroker",
                v,
            )?;
        }
        put_uuid(out, &self.incarnation_id);
        out.put_i64(self.broker_epoch);
        put_array_len(out, self.end_points.len());
        for endpoint in &self.end_points {
            put_string(out, &endpoint.name);
            put_string(out, &endpoint.host);
            out.put_u16(endpoint.port);
            out.put_i16(endpoint.security_protocol);
            put_uvarint_zero(out);
        }
        put_array_len(out, self.features.len());
        for feature in &self.features {
            put_string(out, &feature.name);
            out.put_i16(feature.min_supported_version);
            out.put_i16(feature.max_supported_version);
            put_uvarint_zero(out);
        }
        put_nullable_string(out, self.rack.as_deref());
        put_bool(out, self.fenced);
        if v >= 1 {
            put_bool(out, self.in_controlled_shutdown);
        } else {
            check_field(
                !self.in_controlled_shutdown,
                Self::NAME,
                "InControlledShutdown",
                v,
            )?;
        }
        let mut tagged = TaggedFields::default();
        if v >= 3 {
            if !self.log_dirs.is_empty() {
                tagged.field(0, |out| put_uuids(out, &self.log_dirs));
            }
        } else {
            check_field(self.log_dirs.is_empty(), Self::NAME, "LogDirs", v)?;
        }
        tagged.write(out);
        Ok(())
    }

    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError> {
        let broker_id = r.i32("BrokerId")?;
        let is_migrating_zk_broker = if version >= 2 {
            r.bool("IsMigratingZkBroker")?
        } else {
            false
        };
        let incarnation_id = r.uuid("IncarnationId")?;
        let broker_epoch = r.i64("BrokerEpoch")?;
        // Smallest endpoint: two empty strings, port, protocol, no tags.
        let end_points = r.structs("EndPoints", 7, |r| {
            let endpoint = BrokerEndpoint {
                name: r.string("EndPoints.Name")?,
                host: r.string("EndPoints.Host")?,
                port: r.u16("EndPoints.Port")?,
                security_protocol: r.i16("EndPoints.SecurityProtocol")?,
            };
            r.tagged_fields("BrokerEndpoint", |_, _| Ok(false))?;
            Ok(endpoint)
        })?;
        let features = r.structs("Features", 6, |r| {
            let feature = BrokerFeature {
                name: r.string("Features.Name")?,
                min_supported_version: r.i16("Features.MinSupportedVersion")?,
                max_supported_version: r.i16("Features.MaxSupportedVersion")?,
            };
            r.tagged_fields("BrokerFeature", |_, _| Ok(false))?;
            Ok(feature)
        })?;
        let rack = r.nullable_string("Rack")?;
        let fenced = r.bool("Fenced")?;
        let in_controlled_shutdown = if version >= 1 {
            r.bool("InControlledShutdown")?
        } else {
            false
        };
        let mut log_dirs = Vec::new();
        r.tagged_fields(Self::NAME, |tag, r| match tag {
            0 if version >= 3 => {
                log_dirs = r.uuids("LogDirs")?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(Self {
            version,
            broker_id,
            is_migrating_zk_broker,
            incarnation_id,
            broker_epoch,
            end_points,
            features,
            rack,
            fenced,
            in_controlled_shutdown,
            log_dirs,
        })
    }
}

/// An empty tagged-field section of a nested struct.
fn put_uvarint_zero(out: &mut BytesMut) {
    out.put_u8(0);
}
