pub(crate) mod consumption;
pub(crate) mod consumption_job;
pub(crate) mod credit;
pub(crate) mod forecast;
pub(crate) mod iforest;
pub(crate) mod iforest_job;
pub(crate) mod jobs;
