terraform {
  # signalfx 9.x supports Terraform >= 1.0; the v10 release candidates need >= 1.11.
  required_version = ">= 1.5.0"
  required_providers {
    signalfx = {
      source  = "splunk-terraform/signalfx"
      version = "9.33.0"
    }
  }
}
