pub(crate) mod consumption;
