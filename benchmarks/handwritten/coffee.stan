// Hand-written: y ~ x + (x | group), team coefficients centered on the population ones and sampled at the
// mean of x (intercept at mean(x), slope), correlated. Same parameters (order, types, sizes, meaning) as
// lmmformula's program with centered_1 = 1.
data {
  int<lower=1> N;
  vector[N] Y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=2> N_1;
  array[N] int<lower=1, upper=N_1> J_1;
  matrix[N, 2] Z_1;
  real<lower=0> prior_Intercept_df;
  real prior_Intercept_location;
  real<lower=0> prior_Intercept_scale;
  real<lower=0> prior_sigma_df;
  real prior_sigma_location;
  real<lower=0> prior_sigma_scale;
  real<lower=0> prior_sd_df;
  real prior_sd_location;
  real<lower=0> prior_sd_scale;
  real<lower=0> prior_cor_eta;
}
transformed data {
  real mean_x = mean(Z_1[:, 2]);
  vector[N] x_centered = Z_1[:, 2] - mean_x;
  matrix[2, 2] C = [[1, mean_x], [0, 1]];  // (intercept, slope) -> (intercept at mean(x), slope)
}
parameters {
  real Intercept;
  vector[K] b;
  real<lower=0> sigma;
  vector<lower=0>[2] sd_1;
  cholesky_factor_corr[2] L_1;
  array[N_1] row_vector[2] beta;  // per team: intercept at mean(x), slope
}
model {
  matrix[N_1, 2] B = to_matrix(beta);
  Y ~ normal(B[J_1, 1] + B[J_1, 2] .* x_centered, sigma);
  beta ~ multi_normal_cholesky([Intercept, b[1]], cholesky_decompose(tcrossprod(C * diag_pre_multiply(sd_1, L_1))));
  Intercept ~ student_t(prior_Intercept_df, prior_Intercept_location, prior_Intercept_scale);
  sigma ~ student_t(prior_sigma_df, prior_sigma_location, prior_sigma_scale);
  sd_1 ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
  L_1 ~ lkj_corr_cholesky(prior_cor_eta);
}
