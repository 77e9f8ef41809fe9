//! Certificates and keys for one test cluster: a CA, the API server's serving certificate,
//! an admin client certificate (group `system:masters`) and the service-account key pair.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::HarnessError;

/// PEM texts for one cluster.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The cluster CA certificate (trusted by clients and used to verify client certs).
    pub ca_cert: String,
    /// The API server's serving certificate, for 127.0.0.1 and localhost.
    pub serving_cert: String,
    /// Its private key.
    pub serving_key: String,
    /// The admin client certificate (CN `keelson-e2e-admin`, O `system:masters`).
    pub admin_cert: String,
    /// Its private key.
    pub admin_key: String,
    /// Private key that signs service-account tokens.
    pub sa_key: String,
    /// Its public key, which the API server verifies tokens with.
    pub sa_pub: String,
}

fn pki_err(e: rcgen::Error) -> HarnessError {
    HarnessError::Pki(e.to_string())
}

impl Pki {
    /// Generates fresh keys and certificates (ECDSA P-256).
    pub fn generate(cluster: &str) -> Result<Self, HarnessError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("keelson-e2e-ca-{cluster}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(pki_err)?)
            .map_err(pki_err)?;

        let serving_key = KeyPair::generate().map_err(pki_err)?;
        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default.svc".to_string(),
        ])
        .map_err(pki_err)?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &ca).map_err(pki_err)?;

        let admin_key = KeyPair::generate().map_err(pki_err)?;
        let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
        admin
            .distinguished_name
            .push(DnType::CommonName, "keelson-e2e-admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &ca).map_err(pki_err)?;

        let sa = KeyPair::generate().map_err(pki_err)?;
        Ok(Pki {
            ca_cert: ca.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            sa_key: sa.serialize_pem(),
            sa_pub: sa.public_key_pem(),
        })
    }
}
